# The front door's image for Kubernetes (k8s/front-door.yaml): HAProxy 2.6, as
# in Compose, with the one config baked in (Compose mounts the same file).
# Build from the repository root:
#   docker build -f docker/proxy.Dockerfile -t allezon/proxy:0.1.0 .
FROM haproxy:2.6.31-alpine
# Runs as the base image's own user, haproxy (uid 99, as k8s/front-door.yaml
# says); the config binds no port below 1024.
COPY docker/haproxy.cfg /usr/local/etc/haproxy/haproxy.cfg
