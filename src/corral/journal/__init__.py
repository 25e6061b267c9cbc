"""The journal of a run: the one fold of its events (`RunJournal`), and what is made from
it rather than from the terminal: the `--json` summary and the joblog."""

from corral.journal.joblog import JobLog
from corral.journal.state import AttemptEntry, JobEntry, RunJournal
from corral.journal.summary import SUMMARY_SCHEMA_VERSION, summary_json

__all__ = [
    "SUMMARY_SCHEMA_VERSION",
    "AttemptEntry",
    "JobEntry",
    "JobLog",
    "RunJournal",
    "summary_json",
]
