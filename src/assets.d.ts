// Files imported as text are embedded in the compiled binary.
declare module "*.sql" {
  const text: string;
  export default text;
}
