"""The prompt's live token count, for every model: counted by ``desktop_app.core.token_count``
(the model's own tokenizer files through the torch-free ``tokenizers`` library, split into the
encoder's chunks), so the window needs neither torch nor a round trip to a busy backend."""

from __future__ import annotations

from desktop_app.core.models import ModelInfo
from desktop_app.core.token_count import TokenCount, count_prompt_tokens

__all__ = ["TokenCount", "TokenCounter"]


class TokenCounter:
    def count(self, info: ModelInfo | None, text: str) -> TokenCount | None:
        if info is None:
            return None
        return count_prompt_tokens(text, info)
