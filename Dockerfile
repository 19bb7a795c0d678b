# cairn in a FROM-scratch image. Nothing is pulled: the static binary is
# built on the host (CGO_ENABLED=0; pebble needs no cgo) by `make docker`,
# which then builds this image as cairn:latest.
#
# The image holds one file, /cairn. The container runs as root because a
# scratch image has no way to create a /data owned by another user; the
# Kubernetes manifests run it as a non-root user with fsGroup instead.
FROM scratch
ARG TARGETARCH=amd64
COPY bin/cairn-linux-${TARGETARCH} /cairn
VOLUME /data
# 7101 data (clients and peers), 7201 gossip (memberlist: TCP and UDP),
# 7301 admin HTTP (/metrics, /healthz, /readyz, /debug/pprof/).
EXPOSE 7101/tcp 7201/tcp 7201/udp 7301/tcp
ENTRYPOINT ["/cairn", "server"]
# A single node listening on every interface. A cluster adds --name,
# --advertise and --join (see docker-compose.yml and deploy/k8s/).
CMD ["--data", "/data", "--listen", "0.0.0.0:7101", "--gossip", "0.0.0.0:7201", "--admin", "0.0.0.0:7301"]
