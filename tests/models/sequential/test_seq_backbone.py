"""Sequential models, the backbone: causal attention leaks nothing, padding changes nothing, item features."""

from __future__ import annotations

import torch

from seminar_lib.models.sequential.backbone import ItemEncoder, TransformerBackbone


def item_features(n_items: int) -> dict:
    """Item i has feature i % 3 and, for even i, also feature 3 (CSR form)."""
    values, offsets = [], [0]
    for i in range(n_items):
        values += [i % 3] + ([3] if i % 2 == 0 else [])
        offsets.append(len(values))
    return dict(feature_offsets=torch.tensor(offsets), feature_values=torch.tensor(values), n_features=4)


def backbone(causal: bool, n_items: int = 30, dim: int = 16, max_positions: int = 12, features: bool = False,
             seed: int = 0) -> TransformerBackbone:
    g = torch.Generator().manual_seed(seed)
    kwargs = item_features(n_items) if features else {}
    encoder = ItemEncoder(n_items, dim, generator=g, init_std=0.5, **kwargs)
    net = TransformerBackbone(encoder, max_positions, heads=2, layers=2, dropout=0.0, causal=causal, generator=g)
    return net.eval()


def test_sasrec_output_at_t_does_not_change_when_later_items_change():
    net = backbone(causal=True)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(1, 31, (4, 10), generator=g)
    lengths = torch.full((4,), 10)
    with torch.no_grad():
        out = net(tokens, lengths)
        for t in range(9):
            changed = tokens.clone()
            changed[:, t + 1:] = torch.randint(1, 31, (4, 9 - t), generator=g)   # every later item replaced
            again = net(changed, lengths)
            torch.testing.assert_close(again[:, : t + 1], out[:, : t + 1], rtol=0, atol=1e-6)
            assert not torch.allclose(again[:, t + 1:], out[:, t + 1:])            # ... while later outputs move


def test_sasrec_gradient_of_an_output_reaches_no_later_input():
    net = backbone(causal=True)
    tokens = torch.tensor([[3, 9, 14, 1, 27, 8, 20, 5]])                 # distinct items: one table row per position
    table = net.items().detach().requires_grad_(True)
    weights = torch.randn(16, generator=torch.Generator().manual_seed(0))   # (a plain sum of a LayerNorm output is 0)
    (net(tokens, torch.tensor([8]), table)[0, 3] * weights).sum().backward()
    grads = table.grad.abs().sum(dim=1)[tokens[0]]
    assert (grads[4:] == 0).all() and (grads[:4] > 0).all()


def test_bert4rec_is_bidirectional_but_ignores_padding():
    net = backbone(causal=False)
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(1, 31, (2, 6), generator=g)
    lengths = torch.tensor([6, 4])
    tokens[1, 4:] = 0
    with torch.no_grad():
        out = net(tokens, lengths)
        changed = tokens.clone()
        changed[0, 5] = (changed[0, 5] % 30) + 1                            # a later item of row 0
        assert not torch.allclose(net(changed, lengths)[0, 0], out[0, 0])  # the first output sees it
        padded = torch.cat([tokens, torch.zeros(2, 3, dtype=torch.long)], dim=1)
        torch.testing.assert_close(net(padded, lengths)[1, :4], out[1, :4], rtol=0, atol=1e-5)


def test_right_padding_and_batch_companions_change_nothing_for_sasrec():
    net = backbone(causal=True)
    a = torch.tensor([[5, 7, 9]])
    b = torch.tensor([[5, 7, 9, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        alone = net(a, torch.tensor([3]))
        together = net(b, torch.tensor([3, 6]))
    torch.testing.assert_close(together[0, :3], alone[0], rtol=0, atol=1e-5)


def test_positions_count_from_the_end():
    net = backbone(causal=True)
    seen = {}
    net.blocks[0].register_forward_pre_hook(lambda module, args: seen.update(x=args[0]))
    tokens, lengths = torch.tensor([[4, 8, 2], [6, 9, 0]]), torch.tensor([3, 2])
    with torch.no_grad():
        net(tokens, lengths)
        table = net.items() * 4.0                                        # √dim = 4
        expected = torch.cat([table[tokens[0]] + net.positions[[2, 1, 0]],   # the last event has position 0
                              table[tokens[1, :2]] + net.positions[[1, 0]]])  # padding is not encoded at all
    torch.testing.assert_close(seen["x"], expected)


def test_item_encoder_table_has_a_zero_pad_and_features_are_shared():
    net = backbone(causal=True, features=True)
    table = net.items()
    assert table.shape == (32, 16) and table[0].abs().max() == 0         # pad, 30 items, [MASK]
    enc = net.items
    feats = enc.features(enc.feature_values, enc.feature_offsets)
    torch.testing.assert_close(feats[0], (enc.features.weight[0] + enc.features.weight[3]) / 2)  # mean of the bag
    torch.testing.assert_close(feats[6], feats[0])                        # items 0 and 6 share both features
    torch.testing.assert_close(enc.item_vectors(), enc.ids[:30] + feats)
    only = ItemEncoder(30, 16, use_ids=False, **item_features(30))
    vectors = only.item_vectors()
    torch.testing.assert_close(vectors[0], vectors[6])                   # features only: same features, same vector
    assert not torch.allclose(vectors[0], vectors[1])
