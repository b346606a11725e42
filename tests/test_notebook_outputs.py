"""Widget outputs (what JupyterLab saves for a tqdm bar) are dropped whole; everything else is kept."""

from seminar_lib.notebook_outputs import strip_widget_outputs

BAR = {"output_type": "display_data", "metadata": {},
       "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
                "text/plain": "SASRec: 0%|          | 0/4 [00:00<?, ?it/s]"}}
TEXT = {"output_type": "stream", "name": "stdout", "text": "epoch 1\n"}
RESULT = {"output_type": "execute_result", "execution_count": 3, "metadata": {}, "data": {"text/plain": "0.25"}}


def test_widget_views_and_their_fallback_go_the_rest_stays_in_order():
    assert strip_widget_outputs([BAR, TEXT, BAR, RESULT]) == [TEXT, RESULT]
    assert strip_widget_outputs([TEXT, RESULT]) == [TEXT, RESULT]
    assert strip_widget_outputs([]) == []
