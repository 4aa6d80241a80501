// Where foureyes keeps things in OpenBao: the names the bootstrap (src/dev/openbao.ts) creates and the deployer
// (src/activities/leases.ts) asks for. One module, so the two cannot drift apart.
export const policyName = (prefix: string, env: string) => `${prefix}-env-${env}`;
export const tokenRoleName = (prefix: string, env: string) => `${prefix}-${env}`;
export const deployerPolicyName = (prefix: string) => `${prefix}-deployer`;
/** The AppRole (and its policy) of one environment's deployer: it mints only that environment's leases. */
export const environmentDeployerName = (prefix: string, env: string) => `${prefix}-deployer-${env}`;
export const stateMount = 'secret';
export const statePath = (prefix: string) => `${prefix}-state`;
