/** Aviary's release version; a unit test keeps it equal to the root package.json. */
export const aviaryVersion = '0.1.0';
