"""A small LLVM-IR toolkit for the kernel's numba intrinsics.

The kernel's hot loops are emitted directly as LLVM IR on ``<LANES x double>``
vectors (matmul.py, layer.py, vtanh.py), with no fast-math flags, so
every operation rounds as written.  This module holds what they share: the
vector types, loops with phi-carried values, vector loads, stores and
broadcasts, the register-tile cover of a 2-D index range, declarations of LLVM
intrinsics, the check for a hardware FMA unit, and an atomic counter.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fractaltrain.columns import LANES  # pixels trained in lock-step: one AVX-512 register

_f64 = ir.DoubleType()
_vec = ir.VectorType(_f64, LANES)
_i64 = ir.IntType(64)
_i32 = ir.IntType(32)
_ZEROS_I32 = ir.Constant(ir.VectorType(_i32, LANES), [0] * LANES)


def _c(v):
    return ir.Constant(_i64, v)


def _loop(builder, start, stop, step, inits, body):
    """Emit ``for (i = start; i < stop; i += step) vals = body(i, vals)``; return the final vals."""
    pre = builder.basic_block
    cond = builder.append_basic_block("vl.cond")
    bodyb = builder.append_basic_block("vl.body")
    end = builder.append_basic_block("vl.end")
    builder.branch(cond)
    builder.position_at_end(cond)
    idx = builder.phi(_i64)
    phis = [builder.phi(v.type) for v in inits]
    builder.cbranch(builder.icmp_signed("<", idx, stop), bodyb, end)
    builder.position_at_end(bodyb)
    new = body(idx, phis)
    nxt = builder.add(idx, step)
    last = builder.basic_block
    builder.branch(cond)
    idx.add_incoming(start, pre)
    idx.add_incoming(nxt, last)
    for p, v0, v1 in zip(phis, inits, new):
        p.add_incoming(v0, pre)
        p.add_incoming(v1, last)
    builder.position_at_end(end)
    return phis


def _vptr(builder, base, idx):
    return builder.bitcast(builder.gep(base, [idx]), _vec.as_pointer())


def _vload(builder, base, idx):
    return builder.load(_vptr(builder, base, idx), align=8)


def _vstore(builder, base, idx, val):
    builder.store(val, _vptr(builder, base, idx), align=8)


def _splat(builder, s):
    v = builder.insert_element(ir.Constant(_vec, ir.Undefined), s, _c(0))
    return builder.shuffle_vector(v, ir.Constant(_vec, ir.Undefined), _ZEROS_I32)


def _tiles(builder, na, nb_, tile_a, tile_b, tile):
    """Cover [0, na) x [0, nb_) by calls ``tile(a0, b0, A, B)``: full tiles, then narrower ones.

    Along each dimension the widths go from the tile's down by halving to 1
    (``tile_b`` 8: 8, 4, 2, 1), so a size that is not a multiple of the tile
    (a width of 12, say) is covered by a few narrower tiles rather than by
    many of width 1.
    """
    def widths(w):
        out = [w]
        while out[-1] > 1:
            out.append(max(1, out[-1] // 2))
        return out

    def cover(n, ws, body):  # body(start, width) over [0, n): each width as far as it fits, in turn
        start = _c(0)
        for w in ws:
            stop = builder.add(start, builder.mul(builder.sdiv(builder.sub(n, start), _c(w)), _c(w)))

            def step(i, _, w=w):
                body(i, w)
                return []

            _loop(builder, start, stop, _c(w), [], step)
            start = stop

    cover(nb_, widths(tile_b), lambda b0, B: cover(na, widths(tile_a), lambda a0, A: tile(a0, b0, A, B)))


def _data(context, builder, ty, val):
    return context.make_array(ty)(context, builder, val).data


def _check_args(arrays, ints, floats):
    for a in arrays:
        if not (isinstance(a, types.Array) and a.dtype == types.float64 and a.layout == "C"):
            raise TypeError("expected C-contiguous float64 arrays")
    for i in ints:
        if not isinstance(i, types.Integer):
            raise TypeError("expected integers")
    for f in floats:
        if f != types.float64:
            raise TypeError("expected float64")


def _vconst(v):
    return ir.Constant(_vec, [float(v)] * LANES)


def _declare(builder, name, ret, argtys):
    """The function ``name`` (an LLVM intrinsic, say) declared once in the builder's module."""
    try:
        return builder.module.get_global(name)
    except KeyError:
        return ir.Function(builder.module, ir.FunctionType(ret, argtys), name=name)


def _vintrinsic(builder, name, nargs):
    """The LLVM intrinsic ``llvm.<name>`` on <LANES x double>, taking ``nargs`` vectors."""
    return _declare(builder, f"llvm.{name}.v{LANES}f64", _vec, [_vec] * nargs)


def _has_fma(context):
    """Whether the compilation target has a fused multiply-add unit."""
    return "+fma" in getattr(context.codegen(), "_tm_features", "").split(",")


@intrinsic
def _fetch_add(typingctx, counter, val):
    """Atomically add ``val`` to ``counter[0]`` (int64 array); returns the previous value."""
    sig = types.int64(counter, types.int64)

    def codegen(context, builder, sig, args):
        ptr = _data(context, builder, sig.args[0], args[0])
        return builder.atomic_rmw("add", ptr, args[1], "monotonic")

    return sig, codegen
