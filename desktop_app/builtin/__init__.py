"""The built-in "Shapes" model: data set, tokenizer, training and evaluation (no Qt)."""
