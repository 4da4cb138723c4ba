'use strict';

/** The native module's platform name: `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`, `win32-x64-msvc`, ... */
function platformTarget() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const header = process.report?.getReport?.().header;
    return `${platform}-${arch}-${header?.glibcVersionRuntime ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `${platform}-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** The file name of the native module for this platform. */
function nativeFileName() {
  return `tokenwell.${platformTarget()}.node`;
}

module.exports = { platformTarget, nativeFileName };
