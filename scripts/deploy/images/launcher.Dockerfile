# gantry launcher with the Docker executor: the static gantry binary, git
# (clones stay on the launcher's side) with its shared libraries, a static
# busybox for sh, the CA bundle. Built by scripts/deploy/build-images;
# nothing is pulled.
#
# It runs as root: it talks to the engine through the mounted Docker socket,
# and hands each run's workspace to the runs' user (GANTRY_WORKER_USER,
# 10001:10001). The engine resolves the bind mounts it asks for on its own
# host, so GANTRY_LAUNCHER_WORK_DIR and the directory of terraform/tofu must
# be host directories mounted at the same path (see docs/deploy.md).
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    GANTRY_LAUNCHER_EXECUTOR=docker
ENTRYPOINT ["/usr/bin/gantry"]
CMD ["launcher"]
