# Steward for production: PostgreSQL and a ClickHouse server, wired by
# STEWARD_* variables (see compose.yaml). The image carries no libchdb.so:
# with STEWARD_CLICKHOUSE_URL set the binary never loads the embedded engine.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/steward ./cmd/steward

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/steward --create-home steward
COPY --from=build /out/steward /usr/local/bin/steward
USER steward
ENV STEWARD_ADDR=0.0.0.0:8080 \
    STEWARD_DATA_DIR=/var/lib/steward \
    STEWARD_ENV=production \
    STEWARD_LOG_FORMAT=json
VOLUME /var/lib/steward
EXPOSE 8080
ENTRYPOINT ["steward"]
CMD ["serve"]
