"""DeepRM's own Python environment (Mao et al., HotNets'16, github.com/hongzimao/deeprm), loaded
from a checkout at run time so that bench/python_envs.py can time it next to lepton's `deeprm`.

None of DeepRM's code is part of lepton: `load(src)` reads `job_distribution.py`,
`parameters.py` and `environment.py` from the checkout `src` and makes them run on Python 3,
in memory, without changing what they compute:
- Python 2 syntax: `print x` statements become `print(x)` calls and `xrange` is bound to
  `range` (the statements are only in the files' self-tests, never on the stepped path);
- Python 2's `/` on two integers floors (`job_len * 2 / 3` is 10, and the image observation
  slices with `curr_size / backlog_width`): every `/` whose operands are not visibly floats
  (a `float(...)` call or a float literal) is rewritten into a call that floors when both
  operands are integers, exactly as Python 2 did; the divisions on the stepped path that take
  `float(...)` (the reward, the time-since-last-job column) stay plain `/`;
- `theano` (read for `config.floatX` only) and `matplotlib.pyplot` (used only when rendering)
  are replaced by stubs when they are not installed.
"""

import ast
import numbers
import os
import re
import sys
import types

FILES = ("job_distribution", "parameters", "environment")


def _py2_div(a, b):
    """Python 2's `a / b`: floor division when both are integers (numpy's included)."""
    def integral(x):
        kind = getattr(getattr(x, "dtype", None), "kind", None)
        return isinstance(x, numbers.Integral) or kind in ("i", "u", "b")
    return a // b if integral(a) and integral(b) else a / b


class _ClassicDivision(ast.NodeTransformer):
    @staticmethod
    def _visibly_float(node):
        if isinstance(node, ast.Constant):
            return isinstance(node.value, float)
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "float")

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if not isinstance(node.op, ast.Div) or \
                self._visibly_float(node.left) or self._visibly_float(node.right):
            return node
        call = ast.Call(func=ast.Name(id="_py2_div", ctx=ast.Load()),
                        args=[node.left, node.right], keywords=[])
        return ast.copy_location(call, node)

    def visit_AugAssign(self, node):
        if isinstance(node.op, ast.Div):
            raise NotImplementedError(f"line {node.lineno}: `/=` is not converted")
        return self.generic_visit(node)


def _python3(source, path):
    source = re.sub(r"^(\s*)print (.+)$", r"\1print(\2)", source, flags=re.M)
    tree = _ClassicDivision().visit(ast.parse(source, filename=path))
    return compile(ast.fix_missing_locations(tree), path, "exec")


def _stub(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def load(src):
    """DeepRM's `environment` module (with `parameters` and `job_distribution`) from the
    checkout `src`; raises FileNotFoundError when a file is missing."""
    for name in FILES:
        path = os.path.join(src, name + ".py")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: not found (is {src} a checkout of "
                                    "github.com/hongzimao/deeprm?)")
    for name, attrs in [("theano", {"config": types.SimpleNamespace(floatX="float32")}),
                        ("matplotlib", {}), ("matplotlib.pyplot", {})]:
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = _stub(name, **attrs)
    modules = {}
    for name in FILES:
        path = os.path.join(src, name + ".py")
        with open(path, encoding="utf-8") as f:
            code = _python3(f.read(), path)
        module = types.ModuleType(name)
        module.__file__ = path
        module.__dict__.update(xrange=range, _py2_div=_py2_div)
        # environment.py imports parameters, which imports job_distribution, by these names.
        sys.modules[name] = module
        exec(code, module.__dict__)
        modules[name] = module
    return modules["environment"], modules["parameters"]


def parameters(parameters_module, *, num_slots, simu_len, num_ex, arrival_prob,
               episode_max_length):
    """DeepRM's `Parameters` with the launcher's overrides applied, as its launcher does."""
    pa = parameters_module.Parameters()
    pa.num_nw = num_slots
    pa.simu_len = simu_len
    pa.num_ex = num_ex
    pa.new_job_rate = arrival_prob
    pa.episode_max_length = episode_max_length
    pa.compute_dependent_parameters()
    return pa


def legal_actions(env, pa):
    """The actions DeepRM's `Machine.allocate_job` would carry out now (a filled slot whose job
    fits for its whole length at some start offset 0..T-len-1), then the void action `num_nw`:
    the same set, in the same order, as lepton's action mask on `deeprm`. DeepRM's env has no
    mask (any other action is an implicit wait), so the benchmark computes this outside the
    timed step."""
    free = env.machine.avbl_slot
    horizon = pa.time_horizon
    legal = []
    for j, job in enumerate(env.job_slot.slot):
        if job is None:
            continue
        for t in range(0, horizon - job.len):
            if (free[t:t + job.len] >= job.res_vec).all():
                legal.append(j)
                break
    legal.append(pa.num_nw)
    return legal
