/** The `kafscale` version (`kafscale --version`, GetStatus). */
export const VERSION = "0.1.0";
