"""Progress bars for the integrator CLI: tqdm when installed, else plain occasional lines.

tqdm ships with the worker extra, not the API's base install; an integrator running only the
client must still see progress, so the fallback prints a line per ten percent.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Bar(Protocol):
    total: float | None
    n: float

    def update(self, n: float = 1) -> Any: ...
    def set_postfix_str(self, s: str = "", refresh: bool = True) -> Any: ...
    def refresh(self) -> Any: ...
    def close(self) -> Any: ...


class _PlainBar:
    def __init__(self, total: float | None, desc: str, unit: str, disable: bool) -> None:
        self.total, self.n, self.desc, self.unit = total, 0.0, desc, unit
        self.disable = disable
        self._postfix = ""
        self._shown = -1

    def update(self, n: float = 1) -> None:
        self.n += n
        self.refresh()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self._postfix = s

    def refresh(self) -> None:
        if self.disable or not self.total:
            return
        tenth = int(10 * self.n / self.total)
        if tenth != self._shown:
            self._shown = tenth
            print(f"{self.desc}: {int(self.n)}/{int(self.total)} {self.unit} {self._postfix}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def bar(total: float | None, desc: str, unit: str, *, disable: bool = False) -> Bar:
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainBar(total, desc, unit, disable)
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True)  # type: ignore[return-value]
