"""Fine-tuning: task-prefixed datasets, LoRA/QLoRA/full training, adapter export and comparison."""
