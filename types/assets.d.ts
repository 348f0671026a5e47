/** `import text from './file.proto?raw'`: the file's text (vite in tests, an esbuild plugin in builds). */
declare module '*?raw' {
  const text: string;
  export default text;
}
