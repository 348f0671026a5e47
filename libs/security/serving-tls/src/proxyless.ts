import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where `writeXdsClientFiles` puts a workload's key material (Istio's file names). */
export interface XdsClientFiles {
  readonly certificateFile: string;
  readonly privateKeyFile: string;
  readonly caCertificateFile: string;
}

/**
 * Writes a workload certificate (leaf first, intermediates after), its key and the trust bundle
 * as three PEM files for a gRPC `file_watcher` certificate provider, each atomically (write, then
 * rename: a watcher never reads half a file). The key is written first and readable by the owner
 * only. Call again after every renewal or bundle change: the watcher picks the files up.
 */
export async function writeXdsClientFiles(dir: string, material: { readonly certChainPem: string; readonly keyPem: string; readonly rootsPem: readonly string[] }): Promise<XdsClientFiles> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files: XdsClientFiles = { privateKeyFile: join(dir, 'key.pem'), certificateFile: join(dir, 'cert-chain.pem'), caCertificateFile: join(dir, 'root-cert.pem') };
  const put = async (path: string, text: string, mode: number): Promise<void> => {
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, text.trim() + '\n', { mode });
    await rename(tmp, path);
  };
  await put(files.privateKeyFile, material.keyPem, 0o600);
  await put(files.certificateFile, material.certChainPem, 0o644);
  await put(files.caCertificateFile, material.rootsPem.map((r) => r.trim()).join('\n'), 0o644);
  return files;
}

/**
 * The xDS bootstrap of a proxyless gRPC client that reaches pilot's mTLS port (gRFC A65:
 * `channel_creds` type `tls` whose certificates a `file_watcher` provider reloads). `node` must
 * state NAMESPACE and SERVICE_ACCOUNT matching the certificate's SPIFFE ID, or pilot refuses the
 * stream. Clients that implement A65: gRPC C-core (C++, Python, Ruby, PHP…), Java and Go;
 * `@grpc/grpc-js-xds` 1.14 accepts only `insecure` and `google_default`.
 */
export function proxylessXdsBootstrap(opts: {
  readonly serverUri: string;
  readonly files: XdsClientFiles;
  readonly node: { readonly id: string; readonly cluster?: string; readonly metadata: Readonly<Record<string, unknown>>; readonly locality?: object };
  readonly refreshIntervalSeconds?: number;
}): object {
  return {
    xds_servers: [
      {
        server_uri: opts.serverUri,
        channel_creds: [
          {
            type: 'tls',
            config: {
              certificate_file: opts.files.certificateFile,
              private_key_file: opts.files.privateKeyFile,
              ca_certificate_file: opts.files.caCertificateFile,
              refresh_interval: `${opts.refreshIntervalSeconds ?? 60}s`,
            },
          },
        ],
        server_features: ['xds_v3'],
      },
    ],
    node: { cluster: '', locality: { region: 'local', zone: 'z1' }, ...opts.node, metadata: { GENERATOR: 'grpc', ...opts.node.metadata } },
  };
}
