"""The vocabulary every layer shares: recipes and run options, backend events, model and scheduler
descriptions, paths and settings. Torch-free and Qt-free; nothing here imports another layer."""
