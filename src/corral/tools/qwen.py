"""Qwen Code: `qwen -p PROMPT --output-format stream-json [-m MODEL] [--approval-mode M]`.

Qwen Code is a fork of Gemini CLI and keeps its headless flags, so the adapter is the
Gemini one with Qwen's names, approval modes and parser.
"""

from __future__ import annotations

from typing import ClassVar

from corral.tools.gemini import GeminiTool

_YOLO = ("--approval-mode", "yolo")
_AUTO_EDIT = ("--approval-mode", "auto-edit")
_PLAN = ("--approval-mode", "plan")
_DEFAULT = ("--approval-mode", "default")


class QwenTool(GeminiTool):
    """Qwen Code in headless mode; its stream-json resembles Claude Code's."""

    name: ClassVar[str] = "qwen"
    executable_names: ClassVar[tuple[str, ...]] = ("qwen",)
    parser: ClassVar[str] = "qwen-stream-json"
    permission_modes: ClassVar[dict[str, tuple[str, ...]]] = {
        "default": _DEFAULT,
        "auto-edit": _AUTO_EDIT,
        "yolo": _YOLO,
        "plan": _PLAN,
        "acceptEdits": _AUTO_EDIT,
        "bypassPermissions": _YOLO,
    }
    # Qwen's `json` is one array printed at the end; no parser reads it
    output_formats: ClassVar[dict[str, str]] = {"stream-json": "qwen-stream-json"}
