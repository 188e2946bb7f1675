# PostgreSQL for Gantry, from the host's own server binaries (Debian's
# postgresql package) and the shared libraries ldd lists for them, a static
# busybox for the entrypoint script. Built by scripts/deploy/build-images;
# nothing is pulled.
FROM scratch
COPY rootfs/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY --chown=999:999 data/ /var/lib/postgresql/data/
COPY --chown=999:999 data/ /var/run/postgresql/
ENV PATH=@BINDIR@:/usr/local/bin:/bin \
    PGDATA=/var/lib/postgresql/data \
    LANG=C
USER 999:999
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/gantry-postgres-entrypoint"]
