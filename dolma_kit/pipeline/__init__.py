"""`dolma-kit run`: stages chained under one work directory, resumable stage by stage.

The face of the family: `load` (read a pipeline file, resolve `${…}` through `references`, build every stage's
config from the stage registry, digests), `checks` (the plan check `load` runs: taggers, recipe attribute
names against what earlier stages write (`recipe_check`, `schemas`), tokenizer paths, every unknown key
(`keys`), all problems in one error), `run` (status, plan, run, summary tables).
"""

from dolma_kit.pipeline.load import Pipeline, Step, load_pipeline
from dolma_kit.pipeline.run import Status, plan, plan_table, run_pipeline, summary_table

__all__ = [
    "Pipeline",
    "Status",
    "Step",
    "load_pipeline",
    "plan",
    "plan_table",
    "run_pipeline",
    "summary_table",
]
