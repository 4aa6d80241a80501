// The project's folders; they live in src/config/paths.ts, which the workers may import.
export { dataDir, projectRoot } from '../config/paths.ts';
