# Multi-stage build: compile the native addons (Reed-Solomon, CRC32C, LevelDB, Kiln's own
# storage/native) and the
# TypeScript in a build stage, ship only the runtime tree, run as a non-root user.
FROM node:20-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json ./
COPY server ./server
COPY storage ./storage
COPY test ./test
COPY bench ./bench
COPY conformance ./conformance
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    KILN_ADDRESS=0.0.0.0:9000 \
    KILN_DRIVES=/data/d1,/data/d2,/data/d3,/data/d4
RUN groupadd --system kiln && useradd --system --gid kiln --home /app kiln \
 && mkdir -p /data/d1 /data/d2 /data/d3 /data/d4 && chown -R kiln:kiln /data
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/server/kiln.cjs ./server/kiln.cjs
COPY --from=build /src/storage/native/build/Release/kiln_native.node ./storage/native/build/Release/kiln_native.node
USER kiln
VOLUME ["/data/d1", "/data/d2", "/data/d3", "/data/d4"]
EXPOSE 9000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "require('http').get('http://127.0.0.1:'+(process.env.KILN_ADDRESS||'0.0.0.0:9000').split(':').pop()+'/health/ready',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
ENTRYPOINT ["node", "server/kiln.cjs"]
CMD ["server"]
