// The deployer's Vault/OpenBao client: node-vault, logged in with AppRole, re-logging in or renewing before
// its token expires. Only the deployer zone constructs it (docs/architecture.md, trust zones).
//
// Two traps of node-vault are avoided on purpose:
// - its token-creating commands (tokenCreate, approleLogin, ...) replace the client's own token with the
//   one they return; child tokens are therefore created with a raw request, and only the AppRole login
//   (whose token IS ours) uses the generated command;
// - its generated commands filter request bodies through a JSON schema (dropping e.g. `sync` on lease
//   revocation); every other call here is a raw request whose body is sent as given.
//
// Errors never carry the client's token or a response's secret data: they are rebuilt from the HTTP status
// and Vault's error strings only.
import vault from 'node-vault';
import { readFileSync } from 'node:fs';

export interface AppRoleCredentials {
  address: string;
  roleId: string;
  secretId: string;
  namespace?: string;
}

/** OpenBao cannot be reached or is not ready (sealed, standby, 5xx): worth retrying. */
export class VaultUnavailableError extends Error {
  override name = 'VaultUnavailableError';
}

/** OpenBao answered with a 4xx: a request or policy problem that retrying will not fix. */
export class VaultRequestError extends Error {
  override name = 'VaultRequestError';
  constructor(
    message: string,
    readonly status: number,
    readonly errors: string[],
  ) {
    super(message);
  }
}

/** The deployer's AppRole from VAULT_ADDR + VAULT_ROLE_ID + VAULT_SECRET_ID, or FOUREYES_VAULT_APPROLE_FILE. */
export function appRoleFromEnv(env: NodeJS.ProcessEnv, fallbackNamespace?: string): AppRoleCredentials {
  const namespace = env.VAULT_NAMESPACE || fallbackNamespace || undefined;
  if (env.VAULT_ROLE_ID && env.VAULT_SECRET_ID) {
    if (!env.VAULT_ADDR)
      throw new Error(
        'the deployer has VAULT_ROLE_ID and VAULT_SECRET_ID but no VAULT_ADDR (the OpenBao/Vault address)',
      );
    return {
      address: env.VAULT_ADDR,
      roleId: env.VAULT_ROLE_ID,
      secretId: env.VAULT_SECRET_ID,
      ...(namespace ? { namespace } : {}),
    };
  }
  const file = env.FOUREYES_VAULT_APPROLE_FILE;
  if (file) {
    let parsed: Partial<AppRoleCredentials>;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<AppRoleCredentials>;
    } catch (error) {
      throw new Error(
        `FOUREYES_VAULT_APPROLE_FILE ${file} cannot be read as JSON {address, roleId, secretId} (${(error as NodeJS.ErrnoException).code ?? (error as Error).name})`,
      );
    }
    const address = env.VAULT_ADDR || parsed.address;
    if (!address || !parsed.roleId || !parsed.secretId)
      throw new Error(`FOUREYES_VAULT_APPROLE_FILE ${file} must hold address, roleId and secretId`);
    const ns = namespace ?? parsed.namespace;
    return { address, roleId: parsed.roleId, secretId: parsed.secretId, ...(ns ? { namespace: ns } : {}) };
  }
  throw new Error(
    'the deployer has no Vault credential: set VAULT_ADDR, VAULT_ROLE_ID and VAULT_SECRET_ID, or FOUREYES_VAULT_APPROLE_FILE',
  );
}

interface VaultAuth {
  client_token: string;
  accessor: string;
  lease_duration: number;
  renewable: boolean;
  policies?: string[];
}

export interface VaultResponse<T = Record<string, unknown>> {
  data?: T;
  auth?: VaultAuth;
  lease_id?: string;
  lease_duration?: number;
  renewable?: boolean;
}

export interface RequestOptions {
  /** Send this token instead of the deployer's own (e.g. a leased child token, so its policy bounds the call). */
  token?: string;
}

/** Renew or re-login when less than this share of the token's TTL (and at least a minute) is left. */
const RENEW_FRACTION = 1 / 3;
const MIN_REMAINING_MS = 60_000;

export class DeployerVault {
  private readonly client: ReturnType<typeof vault>;
  private expiresAt = 0;
  private ttlMs = 0;
  private renewable = false;
  private pending: Promise<void> | undefined;

  constructor(
    readonly credentials: AppRoleCredentials,
    private readonly now: () => number = Date.now,
  ) {
    this.client = vault({
      endpoint: credentials.address,
      ...(credentials.namespace ? { namespace: credentials.namespace } : {}),
    });
    // node-vault falls back to process.env.VAULT_TOKEN; the deployer uses its AppRole token only.
    this.client.token = '';
  }

  get address(): string {
    return this.credentials.address;
  }

  /** When the deployer's own token expires (ms since epoch; 0 = not logged in yet). */
  get tokenExpiresAt(): number {
    return this.expiresAt;
  }

  /** Log in, or renew/re-login when the token is close to expiring. Concurrent callers share one attempt. */
  async ensureToken(): Promise<void> {
    const remaining = this.expiresAt - this.now();
    if (this.client.token && remaining > Math.max(MIN_REMAINING_MS, this.ttlMs * RENEW_FRACTION)) return;
    this.pending ??= this.refresh().finally(() => {
      this.pending = undefined;
    });
    await this.pending;
  }

  private async refresh(): Promise<void> {
    if (this.client.token && this.renewable && this.expiresAt > this.now()) {
      try {
        const renewed = (await this.raw('POST', 'auth/token/renew-self', {})) as VaultResponse;
        // Renewal is capped by the role's max TTL; close to it, a fresh login is better.
        if (renewed.auth && renewed.auth.lease_duration * 1000 > MIN_REMAINING_MS * 2)
          return this.remember(renewed.auth);
      } catch {
        // fall through to a fresh login
      }
    }
    await this.login();
  }

  private async login(): Promise<void> {
    let response: VaultResponse;
    try {
      // The generated command sets client.token to the returned token: here that is what we want.
      response = (await this.client.approleLogin({
        role_id: this.credentials.roleId,
        secret_id: this.credentials.secretId,
      })) as VaultResponse;
    } catch (error) {
      throw cleanError(error, 'POST', 'auth/approle/login', this.address);
    }
    if (!response.auth)
      throw new VaultUnavailableError(`OpenBao at ${this.address} answered the AppRole login without a token`);
    this.client.token = response.auth.client_token;
    this.remember(response.auth);
  }

  private remember(auth: VaultAuth): void {
    this.ttlMs = auth.lease_duration * 1000;
    this.renewable = auth.renewable;
    // lease_duration 0 = a token that does not expire (root-like); check it again in an hour anyway.
    this.expiresAt = this.now() + (this.ttlMs > 0 ? this.ttlMs : 3_600_000);
  }

  /** A raw request with the deployer's token (or `options.token`), body sent as given. */
  async request<T = VaultResponse>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    body?: object,
    options: RequestOptions = {},
  ): Promise<T> {
    if (options.token) return (await this.raw(method, path, body, options.token)) as T;
    await this.ensureToken();
    try {
      return (await this.raw(method, path, body)) as T;
    } catch (error) {
      // A token revoked or expired behind our back: log in again once and retry.
      if (
        error instanceof VaultRequestError &&
        error.status === 403 &&
        /permission denied|invalid token|bad token/i.test(error.errors.join(' '))
      ) {
        const probe = await this.raw('GET', 'auth/token/lookup-self').then(
          () => true,
          () => false,
        );
        if (!probe) {
          await this.login();
          return (await this.raw(method, path, body)) as T;
        }
      }
      throw error;
    }
  }

  async read<T = Record<string, unknown>>(path: string, options: RequestOptions = {}): Promise<VaultResponse<T>> {
    return this.request<VaultResponse<T>>('GET', path, undefined, options);
  }

  async write<T = Record<string, unknown>>(
    path: string,
    body: object,
    options: RequestOptions = {},
  ): Promise<VaultResponse<T>> {
    return this.request<VaultResponse<T>>('POST', path, body, options);
  }

  private async raw(method: string, path: string, body?: object, token?: string): Promise<unknown> {
    try {
      return await this.client.request({
        method,
        path: `/${path}`,
        ...(body !== undefined ? { json: body } : {}),
        ...(token ? { headers: { 'X-Vault-Token': token } } : {}),
      });
    } catch (error) {
      throw cleanError(error, method, path, this.address);
    }
  }
}

/** Rebuild an error from status and Vault's error strings only: never the request (it holds the token). */
function cleanError(error: unknown, method: string, path: string, address: string): Error {
  const response = (error as { response?: { statusCode?: number; body?: { errors?: unknown } } }).response;
  const status = response?.statusCode;
  if (typeof status === 'number') {
    const errors = Array.isArray(response?.body?.errors)
      ? (response.body.errors as unknown[]).map((e) => String(e).slice(0, 300))
      : [];
    const what = `OpenBao ${method} ${path}: HTTP ${status}${errors.length ? ` ${errors.join('; ')}` : ''}`;
    if (status >= 500 || status === 429)
      return new VaultUnavailableError(`${what}; waiting for OpenBao at ${address} to be unsealed and active`);
    return new VaultRequestError(what, status, errors);
  }
  const code = (error as { code?: string }).code;
  const message = code ?? (error instanceof Error ? error.message.split('\n')[0] : 'request failed');
  return new VaultUnavailableError(
    `OpenBao ${method} ${path}: ${message}; waiting for OpenBao at ${address} to be reachable`,
  );
}
