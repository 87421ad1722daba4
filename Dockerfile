# Multi-stage build: a static zsync binary on a distroless base, running as non-root.
# docker build --build-arg VERSION=$(git describe --tags --always) -t zsync .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w -X github.com/zsync/zsync/internal/buildinfo.version=${VERSION}" \
      -o /out/zsync ./cmd/zsync

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/zsync /zsync
COPY --from=build /src/cmd/zsync/seed /seed
USER nonroot:nonroot
EXPOSE 8080 9090
# No shell in the image: healthchecks run the binary itself, per process (see docker-compose.yml):
#   /zsync probe http://127.0.0.1:8080/readyz   (serve)    /zsync probe http://127.0.0.1:9090/readyz   (work)
ENTRYPOINT ["/zsync"]
