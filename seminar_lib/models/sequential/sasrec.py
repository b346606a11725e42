r"""SASRec (Kang & McAuley, 2018): a causal transformer over the user's history, next-item targets.

Notebook 05 teaches this model and compares its five losses.

At position t the encoder sees the events up to t (causal attention) and its output :math:`F_t`
scores every item, :math:`r_{i,t} = \langle F_t, M_i\rangle`, to predict the event after t. Training
uses every position of every sequence (the shifted sequence); recommending uses the output at the
last event of the user's last ``max_len`` events.
"""

from __future__ import annotations

import torch

from seminar_lib.models.sequential.base import TransformerRecommender
from seminar_lib.models.sequential.data import SequenceBatch, Sequences, inference_batch, next_item_batch


class SASRec(TransformerRecommender):
    r"""SASRec with a choice of loss.

    Args:
        loss: a key of :data:`~seminar_lib.models.sequential.losses.LOSSES` — ``"softmax"`` (full
            catalogue), ``"bce"`` (one negative, as in the paper), ``"gbce"``, ``"in_batch"``,
            ``"in_batch_logq"`` — or one added with ``register_loss``.
        dim, heads, layers: the transformer (``dim`` divisible by ``heads``).
        max_len: events of history the model reads (the last ones); training uses each user's last
            ``max_len + 1`` events.
        dropout: on the input embeddings and every residual branch.
        epochs: the most epochs (one pass over every user with ≥ 2 events each).
        batch_size: sequences per step.
        lr, weight_decay: Adam's (betas 0.9, 0.98).
        n_negatives: sampled negatives (``bce``: 1 per target; ``gbce``: 256 per sequence)
            or in-batch negatives (256); None: the loss's default.
        gbce_t: gBCE's calibration t ∈ [0, 1].
        item_features: categorical columns of the item table passed to ``fit(item_features=...)``
            whose embeddings are added to the item's (e.g. ``("genres",)``).
        use_item_ids: give every item its own vector (False: features only).
        validate_every, patience, valid_per_user, val_k: validation on ``fit(valid=...)`` — every this
            many epochs, stop after ``patience`` validations without a better nDCG@val_k, at most
            ``valid_per_user`` random samples per user (None: all). ``val_k`` is only the validation
            cut-off; ``recommend(k=)`` is separate.
        bucket_pool: batch sequences of similar length: each epoch's shuffled sequences are sorted by
            length within pools of this many batches
            (:func:`~seminar_lib.models.sequential.data.length_bucketed_batches`); 1: plain random
            batches. Less padding makes an ml-100k epoch ~1.7× faster; test nDCG@10 over three
            seeds was 0.0205 with the default 4 and 0.0221 with 1 (intervals ±0.003: within noise).
        seed: initial weights, shuffles, negatives and dropout (CPU runs are repeatable exactly).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` …
        log_every: print a log line every this many epochs; None: silent.

    After ``fit``: ``history_`` (``epoch, loss, val_ndcg@<val_k>, val_hit_rate@<val_k>``),
    ``epoch_seconds_``, ``best_epoch_`` (the epoch whose weights it keeps), ``train_result_`` (best
    epoch, early stop), ``net_`` (the backbone), ``sequences_``,
    ``target_counts_`` (how often each item is a training positive).

    Measured on ml-100k (5-core, ``global_time_split`` 80/10/10; fit on train with ``valid=``, at most
    15 epochs, batch 128, lr 2e-3, patience 5 on validation nDCG@10 from 5 samples per user; test:
    all 9,853 test events of 166 users as next-item samples, averaged per user, 95 % bootstrap
    interval over users; seed 0; seconds per epoch on one CPU thread):

    =====================================  ====================  =======================  ===========  ====
    model                                  HitRate@10            nDCG@10                  Coverage@10  s/ep
    =====================================  ====================  =======================  ===========  ====
    TopPopular                             0.069 [0.057, 0.081]  0.0071 [0.0058, 0.0085]  0.068        —
    SASRec softmax                         0.184 [0.163, 0.210]  0.0213 [0.0185, 0.0245]  0.384        1.8
    SASRec bce (1 negative)                0.178 [0.157, 0.200]  0.0191 [0.0168, 0.0217]  0.291        1.3
    SASRec gbce (256 per sequence, t .75)  0.104 [0.083, 0.130]  0.0109 [0.0087, 0.0134]  0.051        1.7
    SASRec in_batch (256)                  0.116 [0.097, 0.137]  0.0131 [0.0110, 0.0156]  0.234        1.5
    SASRec in_batch_logq (256)             0.139 [0.121, 0.160]  0.0150 [0.0130, 0.0174]  0.166        1.5
    … with the seed's logQ bugs            0.052 [0.037, 0.072]  0.0060 [0.0042, 0.0082]  0.025        1.5
    SASRec softmax + genres                0.202 [0.177, 0.229]  0.0239 [0.0208, 0.0273]  0.596        1.8
    =====================================  ====================  =======================  ===========  ====

    Full softmax is the best loss once its output embeddings learn (the seed's ``weight.data`` kept
    them frozen). Sampled losses trail it; in-batch negatives are popularity-sampled, so without
    logQ the model learns to rank popular items down. gBCE with 256 negatives — 19 % of this small
    catalogue per sequence — peaks after ~6 epochs and then collapses onto popular items. The
    seed's logQ (frequencies of history inputs, item 0's count zeroed, only negatives corrected)
    collapses: coverage 0.025, below TopPopular's accuracy.

    **At KION's size** (1M users, 15.7k items) full softmax is too heavy for one CPU: an epoch costs about
    ``6·T·d·N`` flops for its output layer alone (``T`` predicted positions, ``d`` = ``dim``, ``N`` items;
    the transformer is small beside it) — ≈21 TFLOP at ``max_len`` 50, minutes of a GPU but far more of a
    2-core CPU (``bench/scale.py`` prints the achieved GFLOP/s). A batch's logits are
    ``batch_size × max_len × N`` floats, twice with their gradient (256 × 50 × 15.7k: 1.6 GB in float32),
    so the GPU run needs ``max_len`` 50 and a batch that fits its memory; on a CPU use
    ``loss="in_batch_logq"`` (``6·T·d·k`` flops with ``k`` = 256 in-batch negatives).
    """

    causal = True
    extra_positions = 0
    shifted_targets = True

    def __init__(self, loss: str = "softmax", **kwargs) -> None:
        super().__init__(loss, **kwargs)

    @property
    def name(self) -> str:
        return f"SASRec({self.loss})"

    def _training_batch(self, rows: torch.Tensor, n_items: int, generator: torch.Generator) -> SequenceBatch:
        return next_item_batch(self.sequences_, rows, self.max_len)

    def _inference_inputs(self, sequences: Sequences, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens, lengths = inference_batch(sequences, rows, self.max_len)
        return tokens, lengths, lengths > 0
