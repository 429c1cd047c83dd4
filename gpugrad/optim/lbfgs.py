"""L-BFGS (Liu & Nocedal 1989), optionally with a strong-Wolfe line search."""

from __future__ import annotations

import numpy as np

from .. import backend
from .. import cuda as _cuda
from ..errors import DeviceError
from ..ops.optim_steps import add_flat_, copy_arrays_
from .optimizer import Optimizer, _check_gradient, _check_number, wrap_array

__all__ = ["LBFGS"]


class LBFGS(Optimizer):
    r"""L-BFGS, matching ``torch.optim.LBFGS`` iteration for iteration.

    Each :meth:`step` runs up to ``max_iter`` quasi-Newton iterations on the
    parameters seen as one flat vector, calling ``closure`` (which must clear
    the gradients, compute the loss, call ``backward`` and return the loss)
    whenever it needs a new loss and gradient.  The inverse Hessian is
    approximated from the last ``history_size`` steps by the two-loop
    recursion; the step length is ``lr`` (the first iteration scales it by
    ``min(1, 1 / |g|_1)``) or is found by a strong-Wolfe line search.

    Parameters
    ----------
    params : iterable of Tensor
        One parameter group only (the flat-vector view needs a single ``lr``).
    lr : float, default 1
    max_iter : int, default 20
        Iterations per ``step``.
    max_eval : int, optional
        Closure evaluations per ``step`` (default ``max_iter * 5 // 4``).
    tolerance_grad : float, default 1e-7
        Stop when the largest gradient component is at most this.
    tolerance_change : float, default 1e-9
        Stop when the loss or the step changes less than this.
    history_size : int, default 100
    line_search_fn : None or "strong_wolfe"

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([3.0, -2.0], requires_grad=True)
    >>> opt = gg.optim.LBFGS([w], lr=1.0, line_search_fn="strong_wolfe")
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = ((w - 1.0) ** 2).sum()
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> [round(v, 4) for v in w.tolist()]
    [1.0, 1.0]
    """

    state_keys = {"func_evals": True, "n_iter": True, "d": False, "t": False, "old_dirs": False,
                  "old_stps": False, "ro": False, "H_diag": False, "prev_flat_grad": False, "prev_loss": False}
    scalar_state_keys = {"func_evals": "count", "n_iter": "count", "t": "number", "H_diag": "number",
                         "prev_loss": "number", "ro": "numbers"}

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        if max_eval is None and isinstance(max_iter, int) and not isinstance(max_iter, bool):
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size,
                        line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS: supports exactly one parameter group (it treats all parameters as one "
                             f"vector), got {len(self.param_groups)}; pass a plain list of tensors")
        self._params = self.param_groups[0]["params"]

    def _check_group(self, group):
        for key in ("lr", "tolerance_grad", "tolerance_change"):
            _check_number("LBFGS", key, group[key])
        for key in ("max_iter", "max_eval", "history_size"):
            value = group[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LBFGS: {key}={value!r} must be a positive integer")
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn={group['line_search_fn']!r}; the choices are None "
                             "(a fixed step of lr) and 'strong_wolfe'")

    def add_param_group(self, param_group):
        raise ValueError("LBFGS: supports exactly one parameter group; build a new LBFGS over all the tensors")

    _FLAT_KEYS = ("d", "prev_flat_grad", "old_dirs", "old_stps")

    def load_state_dict(self, state_dict):
        """Restore :meth:`state_dict`'s state; the flat vectors must have the parameters' total size."""
        from collections.abc import Mapping
        if not isinstance(state_dict, Mapping) or not isinstance(state_dict.get("state"), Mapping):
            return super().load_state_dict(state_dict)
        total = sum(int(p.array.size) for p in self._params)
        dtype = self._params[0].array.dtype
        device = backend.device_of(self._params[0].array)
        flat, rest = {}, {}
        for index, entries in state_dict["state"].items():
            entries = dict(entries)
            kept = {}
            for key in self._FLAT_KEYS:
                if key not in entries:
                    continue
                value = entries.pop(key)
                values = value if isinstance(value, (list, tuple)) else [value]
                copies = []
                for item in values:
                    array = backend.to_numpy(getattr(item, "array", item))
                    if array.shape != (total,):
                        raise ValueError(f"LBFGS.load_state_dict: state {key!r} has shape {array.shape} but the "
                                         f"parameters hold {total} values; the checkpoint belongs to a different model")
                    copies.append(wrap_array(backend.to_device(np.array(array, dtype=dtype), device)))
                kept[key] = copies if isinstance(value, (list, tuple)) else copies[0]
            flat[index] = kept
            rest[index] = entries
            history = len(kept.get("old_dirs", []))
            if history != len(kept.get("old_stps", [])) or history != len(entries.get("ro", [])):
                raise ValueError("LBFGS.load_state_dict: old_dirs, old_stps and ro must have the same length")
            scalar = np.dtype(dtype).type
            if "ro" in entries:
                entries["ro"] = [scalar(v) for v in entries["ro"]]
            if entries.get("H_diag") is not None:
                entries["H_diag"] = scalar(entries["H_diag"])
        super().load_state_dict({"state": rest, "param_groups": state_dict["param_groups"]})
        first = self._params[0]
        if first in self.state:
            for entries in flat.values():
                self.state[first].update(entries)

    def state_dict(self):
        """PyTorch's layout; the history's scalars (``ro``, ``H_diag``, ``t``) as Python floats, so it saves."""
        packed = super().state_dict()
        for entries in packed["state"].values():
            if "ro" in entries:
                entries["ro"] = [float(v) for v in entries["ro"]]
            for key in ("H_diag", "t", "prev_loss"):
                if entries.get(key) is not None:
                    entries[key] = float(entries[key])
        return packed

    # -- the parameters as one flat vector ---------------------------------
    def _xp(self):
        return backend.xp_of(self._params[0].array)

    def _gather_flat_grad(self):
        xp = self._xp()
        pieces = []
        for param in self._params:
            if param.grad is None:
                pieces.append(xp.zeros(param.array.size, dtype=param.array.dtype))
            else:
                _check_gradient("LBFGS", param)
                pieces.append(param.grad.array.reshape(-1))
        return xp.concatenate(pieces)

    def _add_grad(self, step_size, update):
        add_flat_(self._params, step_size, update)

    def _clone_param(self):
        return [param.array.copy() for param in self._params]

    def _set_param(self, arrays):
        copy_arrays_(self._params, arrays)

    def _directional_evaluate(self, closure, x, t, d):
        self._add_grad(t, d)
        loss = float(_evaluate(closure))
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    def _refuse_stale_capture(self, work):
        raise DeviceError("LBFGS.step(): cannot be captured in a CUDA graph: each iteration reads the loss and "
                          "the gradient norms on the host to decide what to do next. Run L-BFGS eagerly")

    # -- one step: up to max_iter iterations --------------------------------
    def step(self, closure=None):
        """Run up to ``max_iter`` iterations; return the loss of the first ``closure()`` call.

        Parameters
        ----------
        closure : callable
            Clears the gradients, computes the loss, calls ``backward`` and
            returns the loss.  Required: L-BFGS evaluates the loss several
            times per step.
        """
        if closure is None:
            raise TypeError("LBFGS.step: needs a closure that clears the gradients, computes the loss, calls "
                            "loss.backward() and returns the loss, e.g. opt.step(closure)")
        if _cuda.is_current_stream_capturing():
            self._refuse_stale_capture(None)
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        xp = self._xp()

        state = self.state.setdefault_for(self._params[0])
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = _evaluate(closure)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if xp.abs(flat_grad).max() <= tolerance_grad:
            return orig_loss

        d = _unwrap(state.get("d"))
        t = state.get("t")
        old_dirs = [_unwrap(v) for v in state.get("old_dirs", [])]
        old_stps = [_unwrap(v) for v in state.get("old_stps", [])]
        ro = list(state.get("ro", []))
        H_diag = state.get("H_diag")
        prev_flat_grad = _unwrap(state.get("prev_flat_grad"))
        prev_loss = state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            # The direction: steepest descent first, then the two-loop recursion.
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y.dot(s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / y.dot(y)
                al = [None] * len(old_dirs)
                q = -flat_grad
                for i in range(len(old_dirs) - 1, -1, -1):
                    al[i] = old_stps[i].dot(q) * ro[i]
                    q -= al[i] * old_dirs[i]
                d = r = q * H_diag
                for i in range(len(old_dirs)):
                    be_i = old_dirs[i].dot(r) * ro[i]
                    r += (al[i] - be_i) * old_stps[i]
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss

            # The step length.
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(xp.abs(flat_grad).sum())) * lr
            else:
                t = lr
            gtd = flat_grad.dot(d)
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = self._clone_param()

                def objective(x, step, direction):
                    return self._directional_evaluate(closure, x, step, direction)
                loss, flat_grad, t, ls_func_evals = _strong_wolfe(objective, x_init, t, d, loss, flat_grad, gtd)
                self._add_grad(t, d)
                opt_cond = xp.abs(flat_grad).max() <= tolerance_grad
            else:
                self._add_grad(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    loss = float(_evaluate(closure))
                    flat_grad = self._gather_flat_grad()
                    opt_cond = xp.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if xp.abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state["d"] = wrap_array(d)
        state["t"] = t
        state["old_dirs"] = [wrap_array(v) for v in old_dirs]
        state["old_stps"] = [wrap_array(v) for v in old_stps]
        state["ro"] = ro
        state["H_diag"] = H_diag
        state["prev_flat_grad"] = wrap_array(prev_flat_grad)
        state["prev_loss"] = prev_loss
        # No retained-graph check here: the loss returned is the first
        # closure's, whose graph the caller holds by design.
        return orig_loss


def _unwrap(value):
    return value.array if value is not None and hasattr(value, "array") else value


def _evaluate(closure):
    import gpugrad
    with gpugrad.enable_grad():
        return closure()


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through two points with slopes, clipped to ``bounds``."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = d2_square ** 0.5
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,  # noqa: C901, PLR0912, PLR0915
                  max_ls=25):
    """Line search for a step ``t`` meeting the strong Wolfe conditions (torch's lswolfe port)."""
    xp = backend.xp_of(d)
    d_norm = xp.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)

    # Bracket an interval holding a point that satisfies the conditions.
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        previous = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = previous, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # Zoom: shrink the bracket until a point satisfies the conditions.
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals
