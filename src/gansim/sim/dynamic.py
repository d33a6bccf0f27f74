"""Dynamic parametrisation: parameters that take one value per run.

The mechanism follows GATE's (see ``../shared/reference/seeds/003_*``), in four parts:

1. **Dynamic objects** (:class:`DynamicObject`) declare which parameters may change
   (:attr:`DynamicObject.dynamic_parameters`). ``obj.add_dynamic_parametrisation(name=None,
   auto_changer=True, **params)`` stores one list of values per parameter (or a callable
   evaluated on the run timing intervals); keys that are not dynamic are kept as
   ``extra_params``.
2. **Changers** (:class:`Changer`) apply one value per run: ``apply_change(run_id)``. With
   ``auto_changer=True`` the object makes its own (:meth:`DynamicObject.create_changers`);
   with ``auto_changer=False`` the values are only stored and the user adds a custom
   changer with ``Simulation.add_changer`` (``examples/custom_changer.py``).
3. **Hidden actors** (:class:`DynamicGeometryActor`, :class:`DynamicSourceActor`) that the
   simulation creates; at the beginning of every run they call their changers, geometry
   first, then sources (a source may follow the volume it is attached to).
4. **Validation** at the start of the simulation: every list must have one value per run;
   the error lists each offending parameter with its length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from gansim.errors import ConfigError, GansimError
from gansim.sim.actors.base import Actor

__all__ = [
    "DynamicObject",
    "DynamicParametrisation",
    "Changer",
    "ParameterChanger",
    "DynamicGeometryActor",
    "DynamicSourceActor",
]


@dataclass
class DynamicParametrisation:
    """One call of ``add_dynamic_parametrisation``.

    Attributes:
        name: unique per object.
        values: parameter -> one value per run (for a parameter given by a function, filled
            when the simulation starts).
        extra_params: the keys that are not dynamic parameters, kept for custom changers.
        auto_changer: whether the object creates its changers itself.
        functions: parameter -> the callable ``f(run_timing_intervals) -> list`` it was given as.
    """

    name: str
    values: dict[str, Any]
    extra_params: dict[str, Any] = field(default_factory=dict)
    auto_changer: bool = True
    functions: dict[str, Callable[[list[list[float]]], Sequence[Any]]] = field(default_factory=dict)


class DynamicObject:
    """Mixin for volumes and sources whose parameters may change from run to run.

    Subclasses list the names in :attr:`dynamic_parameters` and implement
    :meth:`apply_dynamic` (how to take one value of one parameter).
    """

    #: Parameters that may take one value per run.
    dynamic_parameters: ClassVar[frozenset[str]] = frozenset()
    name: str

    def _init_dynamic(self) -> None:
        self.dynamic_params: dict[str, DynamicParametrisation] = {}

    @property
    def is_dynamic(self) -> bool:
        return bool(getattr(self, "dynamic_params", None))

    def add_dynamic_parametrisation(self, name: str | None = None, auto_changer: bool = True, **params: Any) -> str:
        """Give parameters one value per run; return the parametrisation's name.

        Args:
            name: a name unique for this object (default ``parametrisation_<k>``).
            auto_changer: True: this object applies the values itself at each run start;
                False: only store them, for a custom changer (``Simulation.add_changer``).
            params: parameter -> list of values (one per run timing interval) or a callable
                ``f(run_timing_intervals) -> list``. Keys that are not dynamic parameters of this
                object are kept as ``extra_params``; at least one key must be dynamic.
        """
        if not hasattr(self, "dynamic_params"):
            self._init_dynamic()
        if isinstance(auto_changer, np.bool_):
            auto_changer = bool(auto_changer)
        if not isinstance(auto_changer, bool):
            raise ConfigError(f"{self._describe()}: auto_changer {auto_changer!r}: expected True or False")
        dynamic = {k: v for k, v in params.items() if k in self.dynamic_parameters}
        extra = {k: v for k, v in params.items() if k not in self.dynamic_parameters}
        import difflib

        for key in extra:
            # an extra parameter spelled like a dynamic one is almost surely a typo that would be ignored
            close = difflib.get_close_matches(key, sorted(self.dynamic_parameters), n=1, cutoff=0.8)
            if close:
                raise ConfigError(
                    f"{self._describe()}: {key!r} is not a dynamic parameter; did you mean {close[0]!r}? "
                    f"(keys that are not dynamic parameters are kept as extra parameters; rename it if that is what you meant)"
                )
        if not dynamic:
            allowed = ", ".join(sorted(self.dynamic_parameters)) or "none"
            raise ConfigError(f"{self._describe()}: no dynamic parameter among {sorted(params)}; this object's dynamic parameters are: {allowed}")
        dynamic = {k: (list(v) if isinstance(v, np.ndarray) else v) for k, v in dynamic.items()}
        for key, value in dynamic.items():
            if not callable(value) and (isinstance(value, (str, bytes)) or not isinstance(value, Sequence)):
                raise ConfigError(f"{self._describe()}: dynamic parameter {key!r}: expected a list with one value per run, or a callable of the run timing intervals; got {type(value).__name__}")
        if name is None:
            k = len(self.dynamic_params)
            while f"parametrisation_{k}" in self.dynamic_params:
                k += 1
            name = f"parametrisation_{k}"
        if name in self.dynamic_params:
            raise ConfigError(f"{self._describe()}: a dynamic parametrisation named {name!r} already exists; choose another name")
        functions = {k: v for k, v in dynamic.items() if callable(v)}
        values = {k: (None if callable(v) else list(v)) for k, v in dynamic.items()}
        self.dynamic_params[name] = DynamicParametrisation(name, values, extra, auto_changer, functions)
        return name

    def resolve_dynamic_params(self, intervals: Sequence[tuple[float, float]]) -> None:
        """Evaluate callables on the intervals and check that every list has one value per run."""
        bad: list[str] = []
        for dp in getattr(self, "dynamic_params", {}).values():
            for key, function in dp.functions.items():
                # evaluated at every start, so a changed list of intervals gets new values
                try:
                    value = function([list(iv) for iv in intervals])
                except Exception as err:
                    raise ConfigError(f"{self._describe()}: dynamic parameter {key!r}: its function failed on the run timing intervals: {err}") from err
                if isinstance(value, np.ndarray):
                    value = list(value)
                if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                    raise ConfigError(f"{self._describe()}: dynamic parameter {key!r}: its function returned {type(value).__name__}; expected a list")
                dp.values[key] = list(value)
            for key, values in dp.values.items():
                if len(values) != len(intervals):
                    bad.append(f"{dp.name}.{key}: {len(values)}")
        if bad:
            raise ConfigError(
                f"{self._describe()}: dynamic parameters must have one value per run ({len(intervals)} run timing intervals); "
                f"these do not: {'; '.join(bad)}"
            )
        for dp in getattr(self, "dynamic_params", {}).values():
            if not dp.auto_changer:
                continue  # a custom changer decides what its values mean
            for key, values in dp.values.items():
                for run_id, value in enumerate(values):
                    self.check_dynamic_value(key, value, f"{dp.name}.{key}[{run_id}]")

    def check_dynamic_value(self, parameter: str, value: Any, where: str) -> None:
        """Raise ConfigError if ``value`` cannot be taken by ``parameter`` (checked before any run; subclasses refine it)."""

    def create_changers(self) -> list[Changer]:
        """The changers for the parametrisations with ``auto_changer=True``.

        One :class:`ParameterChanger` per parameter; two parametrisations giving the same
        parameter would fight over it and are refused.
        """
        changers: list[Changer] = []
        seen: dict[str, str] = {}
        for dp in getattr(self, "dynamic_params", {}).values():
            if not dp.auto_changer:
                continue
            for key, values in dp.values.items():
                if key in seen:
                    raise ConfigError(f"{self._describe()}: parameter {key!r} is changed by both parametrisations {seen[key]!r} and {dp.name!r}; give it once")
                seen[key] = dp.name
                changers.append(ParameterChanger(f"{self.name}.{dp.name}.{key}", self, key, values))
        return changers

    def apply_dynamic(self, parameter: str, value: Any) -> None:
        """Take ``value`` for the dynamic ``parameter`` (subclasses implement it)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement apply_dynamic")

    def _describe(self) -> str:
        return f"{type(self).__name__} {getattr(self, 'name', '?')!r}"


class Changer:
    """Applies the state of one run to the object it is attached to.

    Subclass it and implement :meth:`apply_change` for a custom changer (with
    ``auto_changer=False`` on the parametrisation whose values it uses).

    Args:
        name: for messages.
        attached_to: the volume or source it changes.
    """

    def __init__(self, name: str, attached_to: DynamicObject) -> None:
        if not isinstance(attached_to, DynamicObject):
            raise ConfigError(f"changer {name!r}: attached_to must be a volume or a source, got {type(attached_to).__name__}")
        self.name = name
        self.attached_to = attached_to

    def initialize(self, simulation: Any) -> None:
        """Check the target belongs to ``simulation`` (a changer of another simulation's object would change nothing here)."""
        if not simulation.owns(self.attached_to):
            raise ConfigError(f"changer {self.name!r}: {self.attached_to._describe()} is not part of this simulation")

    def apply_change(self, run_id: int) -> None:
        raise NotImplementedError(f"changer {self.name!r} ({type(self).__name__}) does not implement apply_change(run_id)")


class ParameterChanger(Changer):
    """Gives a parameter its value for the run: ``attached_to.apply_dynamic(parameter, values[run_id])``."""

    def __init__(self, name: str, attached_to: DynamicObject, parameter: str, values: Sequence[Any]) -> None:
        super().__init__(name, attached_to)
        self.parameter = parameter
        self.values = list(values)

    def apply_change(self, run_id: int) -> None:
        try:
            self.attached_to.apply_dynamic(self.parameter, self.values[run_id])
        except GansimError as err:
            # say which run and which parameter: the runs before this one have already been simulated
            raise type(err)(f"run {run_id}, dynamic parameter {self.name}: {err}") from err


class _DynamicActor(Actor):
    """Calls its changers at the beginning of every run (a hidden actor the simulation creates)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.changers: list[Changer] = []
        self.applied: list[tuple[int, str]] = []  # (run_id, changer) in the order applied, for checks

    def begin_run(self, run_id: int, interval: tuple[float, float]) -> None:
        for changer in self.changers:
            changer.apply_change(run_id)
            self.applied.append((run_id, changer.name))


class DynamicGeometryActor(_DynamicActor):
    """Applies volume changes (translation, rotation, image) first at each run start."""

    priority = 0


class DynamicSourceActor(_DynamicActor):
    """Applies source changes (activity image, condition image, activity) after the geometry."""

    priority = 1

