"""feature_dropout: dropout of a dense tensor from the kernels' counter-based hash, whose
backward regenerates the mask."""
import math

import pytest
import torch

from gat_pyg.kernels import feature_dropout


def ones(*shape, dtype=torch.float32):
    return torch.ones(*shape, dtype=dtype)


@pytest.mark.parametrize('p', [0.1, 0.6])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.bfloat16])
def test_kept_fraction_and_values(p, dtype):
    torch.manual_seed(0)
    x = torch.randn(2708, 64).to(dtype)
    out = feature_dropout(x, p, True)
    assert out.shape == x.shape and out.dtype == dtype
    kept = out.ne(0)
    # Kept entries are x * (1 / (1 - p)), computed in float32 (float64 for float64 inputs).
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    expected = (x.to(acc) * torch.tensor(1 / (1 - p), dtype=acc)).to(dtype)
    assert torch.equal(out[kept], expected[kept])
    fraction = kept.double().mean().item()
    assert abs(fraction - (1 - p)) < 6 * math.sqrt(p * (1 - p) / x.numel())
    # Each column (and row) keeps its own share: no pattern along either axis.
    columns = kept.double().mean(0)
    assert (columns - (1 - p)).abs().max() < 6 * math.sqrt(p * (1 - p) / x.shape[0])


@pytest.mark.parametrize('shape', [(1000, ), (37, 53), (7, 11, 13), (3, 0, 5), ()])
def test_shape_preserving_and_contiguous_or_not_alike(shape):
    x = torch.randn(shape)
    torch.manual_seed(1)
    out = feature_dropout(x, 0.5, True)
    assert out.shape == x.shape and out.is_contiguous()
    if x.dim() >= 2:
        strided = x.transpose(0, 1).contiguous().transpose(0, 1)
        assert not strided.is_contiguous() or x.numel() == 0
        torch.manual_seed(1)
        assert torch.equal(feature_dropout(strided, 0.5, True), out)


def test_backward_regenerates_the_mask():
    torch.manual_seed(2)
    x = torch.randn(300, 20, requires_grad=True)
    out = feature_dropout(x, 0.4, True)
    weight = torch.randn(300, 20)
    (grad, ) = torch.autograd.grad((out * weight).sum(), x)
    mask = out.detach() / x.detach()   # keep / (1 - p), x has no zeros
    torch.testing.assert_close(grad, weight * mask)
    assert grad.eq(0).equal(out.eq(0))


@pytest.mark.parametrize('dtype', [torch.float64])
def test_gradcheck_with_a_seeded_generator(dtype):
    x = torch.randn(17, 5, dtype=dtype, requires_grad=True)

    def fn(t):
        torch.manual_seed(3)
        return feature_dropout(t, 0.3, True)

    assert torch.autograd.gradcheck(fn, (x, ))


def test_manual_seed_repeats_bit_for_bit_and_other_seeds_differ():
    x = torch.randn(500, 30)
    torch.manual_seed(4)
    first = feature_dropout(x, 0.5, True)
    torch.manual_seed(4)
    again = feature_dropout(x, 0.5, True)
    torch.manual_seed(5)
    other = feature_dropout(x, 0.5, True)
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_one_and_two_threads_give_the_same_mask():
    x = torch.randn(100_000, 8)
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(6)
            results.append(feature_dropout(x, 0.5, True))
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(*results)


def test_identity_outside_training_or_without_p_and_zeros_at_p_one():
    x = torch.randn(10, 3, requires_grad=True)
    assert feature_dropout(x, 0.5, False) is x
    assert feature_dropout(x, 0.0, True) is x
    out = feature_dropout(x, 1.0, True)
    assert out.eq(0).all()
    out.sum().backward()
    assert x.grad.eq(0).all()


def test_misuse_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match=r'^p: expected a probability in \[0, 1\]'):
        feature_dropout(torch.ones(3), 1.5, True)
    with pytest.raises(TypeError, match=r'^p: expected a probability, a number in \[0, 1\]'):
        feature_dropout(torch.ones(3), '0.5', True)
    with pytest.raises(TypeError, match='^x: expected floating point values'):
        feature_dropout(torch.ones(3, dtype=torch.int64), 0.5, True)
    with pytest.raises(TypeError, match='^x: expected a dense tensor'):
        feature_dropout(torch.ones(3, 3).to_sparse(), 0.5, True)
    with pytest.raises(TypeError, match='^x: expected a tensor'):
        feature_dropout([1.0, 2.0], 0.5, True)


def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    x = torch.randn(64, 16, requires_grad=True)

    def fn(t):
        return (feature_dropout(t, 0.5, True) * 2).sum()

    torch.manual_seed(7)
    eager = fn(x)
    (eager_grad, ) = torch.autograd.grad(eager, x)
    compiled = torch.compile(fn, fullgraph=True, backend='aot_eager')
    torch.manual_seed(7)
    got = compiled(x)
    (got_grad, ) = torch.autograd.grad(got, x)
    torch.testing.assert_close(got, eager)
    torch.testing.assert_close(got_grad, eager_grad)


def test_vmap_needs_a_randomness_mode():
    x = torch.ones(3, 50, 4)
    with pytest.raises(RuntimeError, match='randomness'):
        torch.func.vmap(lambda t: feature_dropout(t, 0.5, True))(x)
    same = torch.func.vmap(lambda t: feature_dropout(t, 0.5, True), randomness='same')(x)
    assert torch.equal(same[0], same[1])
    different = torch.func.vmap(lambda t: feature_dropout(t, 0.5, True),
                                randomness='different')(x)
    assert not torch.equal(different[0], different[1])
