/** Entry point of the `tidemark` command; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  console.log('tidemark', argv.join(' '));
  return 0;
}
