# tbgw in a container: docs/DEPLOYMENT.md. The build stage builds the Debian package; the runtime
# stage installs only that package and its Debian runtime libraries, and runs as the tbgw user.
FROM debian:bookworm AS build
COPY . /src
RUN TBGW_NO_PEERS=1 bash /src/scripts/install-deps.sh \
 && cmake -S /src -B /build -DCMAKE_BUILD_TYPE=Release -DTBGW_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" \
 && cd /build && cpack -G DEB

FROM debian:bookworm-slim
COPY --from=build /build/tbgw_*.deb /tmp/
RUN apt-get update \
 && apt-get install -y --no-install-recommends /tmp/tbgw_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/tbgw_*.deb
USER tbgw
WORKDIR /var/lib/tbgw
VOLUME ["/etc/tbgw", "/var/lib/tbgw"]
ENTRYPOINT ["/usr/bin/tbgw"]
CMD ["-c", "/etc/tbgw/tb_gateway.json"]
