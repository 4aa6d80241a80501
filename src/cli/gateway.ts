// foureyes gateway: the gateway process (src/gateway/main.ts) as a production entry point. Configuration
// comes from the environment (README's variable table); SIGTERM stops accepting and lets in-flight requests finish.
export async function run(args: string[]): Promise<void> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(
      'usage: foureyes gateway\n\nRuns the HTTP gateway on PORT (default 3000), HOST (default 127.0.0.1; 0.0.0.0 in a container).',
    );
    return;
  }
  await import('../gateway/main.ts');
}
