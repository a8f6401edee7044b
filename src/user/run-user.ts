export async function runUserMain(_args: string[]): Promise<number> { return 1; }
