# nats-server built static (CGO_ENABLED=0) from the github.com/nats-io/nats-server/v2
# module at the version go.mod names, with a configuration for Gantry
# (nats.conf: JetStream, the services' user, Gantry's auth callout for pool
# launchers). Built by scripts/deploy/build-images; nothing is pulled.
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 data/ /data/
USER 65532:65532
# clients, cluster routes, monitoring
EXPOSE 4222 6222 8222
ENTRYPOINT ["/usr/local/bin/nats-server"]
CMD ["--config", "/etc/nats/nats.conf"]
