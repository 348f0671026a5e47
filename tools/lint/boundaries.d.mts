// Types of boundaries.mjs (plain JS so eslint.config.mjs can import it without a TS loader).
export declare const transports: string[];
export declare function boundaries(forTests: boolean): Record<string, unknown>;
export declare const testFiles: string[];
export declare const deepImportPatterns: Array<{ group: string[]; message: string }>;
export declare const translateFiles: string[];
export declare const translateImportPatterns: Array<{ group: string[]; message: string }>;
