# gantry server: the static gantry binary, git and a static busybox sh (the API resolves branch heads
# with `git ls-remote`) with its shared libraries, the CA bundle. Built by
# scripts/deploy/build-images, which stages rootfs/ from this checkout and the
# host; nothing is pulled.
FROM scratch
COPY rootfs/ /
# The bucket (file:// URLs) and the first admin key live in volumes mounted
# here; a new named volume takes this ownership.
COPY --chown=65532:65532 data/ /var/lib/gantry/
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    GANTRY_BLOB_URL=file:///var/lib/gantry/blobs?no_tmp_dir=true
USER 65532:65532
WORKDIR /var/lib/gantry
# API (Connect, gRPC health and reflection), instrumentation (probes, /metrics).
EXPOSE 1983 8080
ENTRYPOINT ["/usr/local/bin/gantry"]
CMD ["server"]
