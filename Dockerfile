# syntax=docker/dockerfile:1
# One image with the three services and idvctl; docker-compose.yml picks the binary with `command`.
# Building needs Docker and network access to the Rust crate registry, PyPI and Debian.
#
#   docker build -t idv .
ARG DEBIAN=bookworm

FROM rust:1-${DEBIAN} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libtesseract-dev libleptonica-dev clang libclang-dev tesseract-ocr python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The face models, ONNX Runtime's library and the MRZ language data, each sha256-checked: the same script the
# README's commands run.
RUN python3 scripts/fetch-models.py
RUN cargo build --release --locked -p document-ocr -p face-match -p phone-proof -p idvctl

FROM debian:${DEBIAN}-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libtesseract5 tesseract-ocr-eng fonts-ocr-b ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/idv idv \
 && mkdir -p /var/lib/idv /opt/idv/tessdata \
 && chown idv /var/lib/idv \
 && ln -s /usr/share/tesseract-ocr/5/tessdata/eng.traineddata /opt/idv/tessdata/eng.traineddata
COPY --from=build /src/target/release/document-ocr /src/target/release/face-match \
     /src/target/release/phone-proof /src/target/release/idvctl /usr/local/bin/
COPY --from=build /src/.cache/onnxruntime/libonnxruntime.so /opt/idv/lib/libonnxruntime.so
COPY --from=build /src/models/manifest.toml /src/models/*.onnx /opt/idv/models/
COPY --from=build /src/.cache/tessdata/mrz.traineddata /opt/idv/tessdata/mrz.traineddata
# One OpenMP thread per Tesseract engine: each OCR worker is one thread (see README, document-ocr).
ENV ORT_DYLIB_PATH=/opt/idv/lib/libonnxruntime.so \
    FACE_MANIFEST=/opt/idv/models/manifest.toml \
    OCR_TESSDATA=/opt/idv/tessdata \
    OMP_THREAD_LIMIT=1 \
    IDV_DATA_DIR=/var/lib/idv
USER idv
WORKDIR /var/lib/idv
