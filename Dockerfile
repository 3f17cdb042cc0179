# syntax=docker/dockerfile:1
# Multi-stage build: a static, trimmed binary in a distroless non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/appwrite-sync ./cmd/appwrite-sync
# The spool directory, owned by nonroot: a volume mounted there starts with this ownership.
RUN mkdir -p /out/spool

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/appwrite-sync /usr/local/bin/appwrite-sync
COPY config.yaml /etc/appwrite-sync/config.yaml
COPY --from=build --chown=65532:65532 /out/spool /var/lib/appwrite-sync/spool
ENV APPWRITE_SYNC_SPOOL_DIR=/var/lib/appwrite-sync/spool
# Numeric (distroless nonroot): Kubernetes can then verify runAsNonRoot without runAsUser.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/appwrite-sync"]
CMD ["serve", "--config", "/etc/appwrite-sync/config.yaml"]
