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
        item_features: the *names* of categorical columns (e.g. ``("genres",)``) of the table passed to
            ``fit(item_features=table)``, whose embeddings are added to the item's (DSSM's is the table).
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

    @property
    def name(self) -> str:
        return f"SASRec({self.loss})"

    def _training_batch(self, rows: torch.Tensor, n_items: int, generator: torch.Generator) -> SequenceBatch:
        return next_item_batch(self.sequences_, rows, self.max_len)

    def _inference_inputs(self, sequences: Sequences, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens, lengths = inference_batch(sequences, rows, self.max_len)
        return tokens, lengths, lengths > 0
