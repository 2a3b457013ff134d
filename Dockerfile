# One image with the three services and idvctl; docker-compose.yml picks the binary with `command`.
#
#   docker build -t idv .
#       compiles everything from source: needs the Rust image and network access to crates.io, PyPI and Debian.
#   DOCKER_BUILDKIT=1 docker build --build-arg BINARIES=prebuilt -t idv .
#       takes what `cargo build --release` and scripts/fetch-models.py left in the build context (the binaries,
#       models/, ONNX Runtime and the MRZ language data); `--build-arg PREBUILT=target/debug` takes the debug
#       build. For machines that cannot pull a Rust image (scripts/compose-test.sh).
#   --build-arg RUNTIME_BASE=<image> starts the runtime from an image that already holds the runtime packages
#       (Tesseract, the OCR-B font, CA certificates, curl) instead of installing them from Debian.
#
# Only BuildKit skips the stages a build does not use; the classic builder would also build (and pull) them.
ARG DEBIAN=bookworm
ARG BINARIES=build
ARG RUNTIME_BASE=runtime-base

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

# The same files, built outside: the layout of the `build` stage, so the runtime stage reads either.
FROM scratch AS prebuilt
ARG PREBUILT=target/release
COPY ${PREBUILT}/document-ocr ${PREBUILT}/face-match ${PREBUILT}/phone-proof ${PREBUILT}/idvctl \
     /src/target/release/
COPY .cache/onnxruntime/libonnxruntime.so /src/.cache/onnxruntime/
COPY .cache/tessdata/mrz.traineddata /src/.cache/tessdata/
COPY models/ /src/models/

FROM ${BINARIES} AS binaries

FROM debian:${DEBIAN}-slim AS runtime-base
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libtesseract5 tesseract-ocr-eng fonts-ocr-b ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

FROM ${RUNTIME_BASE}
RUN useradd --system --uid 10001 --home-dir /var/lib/idv idv \
 && mkdir -p /var/lib/idv /opt/idv/tessdata \
 && chown idv /var/lib/idv \
 && ln -s /usr/share/tesseract-ocr/5/tessdata/eng.traineddata /opt/idv/tessdata/eng.traineddata
COPY --from=binaries /src/target/release/document-ocr /src/target/release/face-match \
     /src/target/release/phone-proof /src/target/release/idvctl /usr/local/bin/
# scripts/fetch-models.py writes these 0644: the services run as uid 10001 and must read them.
COPY --from=binaries /src/.cache/onnxruntime/libonnxruntime.so /opt/idv/lib/libonnxruntime.so
COPY --from=binaries /src/models/manifest.toml /src/models/*.onnx /opt/idv/models/
COPY --from=binaries /src/.cache/tessdata/mrz.traineddata /opt/idv/tessdata/mrz.traineddata
# One OpenMP thread per Tesseract engine: each OCR worker is one thread (see README, document-ocr).
ENV ORT_DYLIB_PATH=/opt/idv/lib/libonnxruntime.so \
    FACE_MANIFEST=/opt/idv/models/manifest.toml \
    OCR_TESSDATA=/opt/idv/tessdata \
    OMP_THREAD_LIMIT=1 \
    IDV_DATA_DIR=/var/lib/idv
USER idv
WORKDIR /var/lib/idv
