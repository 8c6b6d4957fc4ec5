"""What `${…}` means in a pipeline file: the work directory, the local folder, earlier stages' options, or the
environment.

- `${work_dir}`: the pipeline's work directory (local or `s3://`);
- `${local_dir}`: a local folder for outputs that must be local files (tokens are memmaps moved in place,
  training reads them and writes checkpoints): the pipeline's `local_dir:`, by default the work directory when
  that is local (a remote work directory needs one set);
- `${STAGE.key}` (dotted further for nested values): an earlier stage's resolved option, e.g.
  `${tokenize.destination}`;
- `${NAME}` for any other name: the environment variable, as mix recipes read them (unset: an error).

A string that is only a reference takes the referenced value's type (`config.substitute` does the walking).
"""

from __future__ import annotations

from typing import Any

from dolma_kit.config import Lookup, Where, environment, normalise_key
from dolma_kit.stages import Context


def pipeline_lookup(context: Context) -> Lookup:
    """The `${…}` resolver of a pipeline at the point where `context.earlier` holds the stages so far."""

    def lookup(name: str, where: Where) -> Any:
        if name == "work_dir":
            return context.work_dir
        if name == "local_dir":
            return context.local_dir(where)
        if "." not in name or name.startswith("oc.env:"):
            if name.removeprefix("oc.env:") in ("work_dir", "local_dir"):
                return lookup(name.removeprefix("oc.env:"), where)
            return environment(name, where)
        stage, *keys = name.split(".")
        if stage not in context.earlier:
            known = ", ".join(context.earlier) or "none yet"
            raise where.error(f"${{{name}}}: no earlier stage '{stage}' (earlier stages: {known})")
        value: Any = context.earlier[stage]
        for key in keys:
            key = normalise_key(key)
            if not isinstance(value, dict) or key not in value:
                raise where.error(f"${{{name}}}: stage '{stage}' has no option '{key}'")
            value = value[key]
        return value

    return lookup
