"""The schema revision this corral writes: the newest migration's id.

Kept apart from `corral.store.schema` (SQLAlchemy tables) so that checking an existing
history is current costs one SELECT and no SQLAlchemy import.
"""

from __future__ import annotations

HEAD_REVISION = "0005"
