"""Fine-tuning: task-prefixed datasets, LoRA/QLoRA training, adapters (not built yet)."""
