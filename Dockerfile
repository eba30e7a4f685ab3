# coalmine's image: `docker build -t coalmine:dev .` (see the README, "Deploy to
# Kubernetes"). Two stages: a release build of the locked dependency graph, then the
# binary alone on a distroless base (glibc and CA certificates, no shell), run as
# uid/gid 65532 (`nonroot`), which deploy/coalmine/deployment.yaml requires.

FROM docker.io/library/rust:1.95.0-bookworm AS build
WORKDIR /src
# The toolchain file pins the same 1.95.0 the base image has.
COPY . .
RUN cargo build --release --locked --bin coalmine \
 && install -D -m 0755 target/release/coalmine /out/coalmine

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/coalmine /usr/local/bin/coalmine
USER 65532:65532
# The embedded store's default place; mount a volume here to keep revisions.
WORKDIR /var/lib/coalmine
EXPOSE 18000 18080
ENTRYPOINT ["/usr/local/bin/coalmine"]
CMD ["serve", "--data-dir", "/var/lib/coalmine"]
