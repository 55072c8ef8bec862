// A real Kiln server for integration tests: real HTTP on 127.0.0.1 (random port), real drive
// directories in a temp dir, the same createServer() the CLI uses.
import { S3Client } from '@aws-sdk/client-s3';
import { createServer, KilnServer } from '../../server/app';
import { buildConfig, ServerConfig } from '../../server/config';
import { tempDrives } from './drives';

export const ROOT_USER = 'testroot';
export const ROOT_PASSWORD = 'testroot-secret-key';

export interface TestServer {
  kiln: KilnServer;
  endpoint: string;
  port: number;
  drives: string[];
  config: ServerConfig;
  client(opts?: { accessKeyId?: string; secretAccessKey?: string; forcePathStyle?: boolean }): S3Client;
  /** Environment for child processes (boto3, AWS CLI) pointing at this server. */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function startServer(opts: { drives?: number; overrides?: Partial<ServerConfig> } = {}): Promise<TestServer> {
  const tmp = tempDrives(opts.drives ?? 4, 'kiln-srv');
  const config: ServerConfig = {
    ...buildConfig({ address: '127.0.0.1:0', drives: tmp.drives.join(','), 'log-level': 'warn', 'min-part-size': String(5 * 1024 * 1024) }, {}),
    rootUser: ROOT_USER, rootPassword: ROOT_PASSWORD,
    ...opts.overrides,
  };
  const kiln = await createServer(config, { logger: false });
  await kiln.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = kiln.app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: S3Client[] = [];
  return {
    kiln, endpoint, port, drives: tmp.drives, config,
    client(o = {}) {
      const c = new S3Client({
        endpoint, region: 'us-east-1', forcePathStyle: o.forcePathStyle ?? true,
        credentials: { accessKeyId: o.accessKeyId ?? ROOT_USER, secretAccessKey: o.secretAccessKey ?? ROOT_PASSWORD },
      });
      clients.push(c);
      return c;
    },
    env(extra = {}) {
      return {
        ...process.env,
        AWS_ACCESS_KEY_ID: ROOT_USER, AWS_SECRET_ACCESS_KEY: ROOT_PASSWORD, AWS_DEFAULT_REGION: 'us-east-1', AWS_REGION: 'us-east-1',
        AWS_ENDPOINT_URL: endpoint, KILN_ENDPOINT: endpoint, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        AWS_PAGER: '', AWS_EC2_METADATA_DISABLED: 'true',
        ...extra,
      };
    },
    async close() {
      for (const c of clients) c.destroy();
      await kiln.close();
      tmp.cleanup();
    },
  };
}
