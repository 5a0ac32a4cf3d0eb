"""The training engine (private): data preparation, batches, masks, pruning run, training log."""
