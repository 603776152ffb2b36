"""What the benchmarks and the tests share: a local server speaking Ollama's API
(`fake_ollama`), a scripted chat model (`scripted_chat`) and real index runs in child
processes (`index_runs`). Stand-ins only where a third-party server cannot run here."""
