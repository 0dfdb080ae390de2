<#
.SYNOPSIS
Install CodeTether on Windows (x86_64): one self-contained .exe, no Python needed.

.DESCRIPTION
Downloads codetether-<version>-windows-x86_64.exe and SHA256SUMS from the release base URL,
refuses the file unless its SHA-256 matches (nothing is left behind), and installs it as
<InstallDir>\codetether.exe (default %LOCALAPPDATA%\Programs\codetether), adding that folder
to your user PATH.

The Windows artifact is PyInstaller's --onefile build (`python scripts/build_binary.py
--onefile` on a Windows machine): Windows has no `sh` for the self-extracting launcher used on
Linux and macOS, so it unpacks itself on every start (about a second) instead of once.

  irm https://github.com/codetether/codetether/releases/latest/download/install.ps1 | iex
  .\install.ps1 [-Version X] [-BaseUrl URL] [-InstallDir DIR] [-NoFunctionGemma]
  .\install.ps1 -Uninstall

Environment: CODETETHER_RELEASE_URL (same as -BaseUrl; a directory holding the artifacts and
SHA256SUMS, e.g. an internal mirror), CODETETHER_VERSION (same as -Version).

.PARAMETER Version
Install this version (default: the latest release).
.PARAMETER BaseUrl
Where the release files are (default: GitHub releases).
.PARAMETER InstallDir
Install folder (default: %LOCALAPPDATA%\Programs\codetether).
.PARAMETER NoFunctionGemma
Do not download the FunctionGemma tool-router model (the model step arrives with the router;
until then nothing is downloaded either way).
.PARAMETER Uninstall
Remove codetether.exe and its PATH entry (keeps your configuration and sessions).
#>
[CmdletBinding()]
param(
    [string]$Version = $env:CODETETHER_VERSION,
    [string]$BaseUrl = $env:CODETETHER_RELEASE_URL,
    [string]$InstallDir = (Join-Path $env:LOCALAPPDATA "Programs\codetether"),
    [switch]$NoFunctionGemma,
    [switch]$Uninstall
)

$ErrorActionPreference = "Stop"
$RepoUrl = "https://github.com/codetether/codetether/releases"
$Platform = "windows-x86_64"

# Errors are thrown, not `exit`ed: under `irm | iex` an exit would close the user's shell.
function Fail([string]$Message) { throw [System.InvalidOperationException]::new($Message) }

function Get-ReleaseBase {
    if ($BaseUrl) { return $BaseUrl.TrimEnd("/") }
    if ($Version) { return "$RepoUrl/download/v$($Version.TrimStart('v'))" }
    return "$RepoUrl/latest/download"
}

# "<hex>  <name>" lines -> @{ name = hex }
function Read-Sums([string]$Text) {
    $sums = @{}
    foreach ($line in $Text -split "`r?`n") {
        if ($line -match '^([0-9a-f]{64}) [ *](.+)$') { $sums[$Matches[2]] = $Matches[1] }
    }
    return $sums
}

function Select-Artifact($Sums, [string]$Base) {
    if ($Version) {
        $name = "codetether-$($Version.TrimStart('v'))-$Platform.exe"
        if (-not $Sums.ContainsKey($name)) { Fail "no codetether $Version for $Platform at $Base" }
        return $name
    }
    $found = @($Sums.Keys | Where-Object { $_ -like "codetether-*-$Platform.exe" })
    if ($found.Count -eq 0) { Fail "no codetether build for $Platform at $Base" }
    if ($found.Count -gt 1) { Fail "several versions at $Base ($($found -join ' ')); pass -Version X" }
    return $found[0]
}

function Set-UserPath([string]$Dir, [bool]$Add) {
    $current = [Environment]::GetEnvironmentVariable("Path", "User")
    $parts = @($current -split ";" | Where-Object { $_ -and ($_.TrimEnd("\") -ne $Dir.TrimEnd("\")) })
    if ($Add) { $parts += $Dir }
    [Environment]::SetEnvironmentVariable("Path", ($parts -join ";"), "User")
}

function Install-CodeTether {
    if (-not [Environment]::Is64BitOperatingSystem) { Fail "CodeTether for Windows needs x86_64" }
    $base = Get-ReleaseBase
    Write-Host "codetether: platform $Platform, release $base"
    $tmp = Join-Path ([IO.Path]::GetTempPath()) ("codetether-install-" + [Guid]::NewGuid())
    New-Item -ItemType Directory -Path $tmp | Out-Null
    try {
        $ProgressPreference = "SilentlyContinue"  # the progress bar slows downloads a lot
        $sumsFile = Join-Path $tmp "SHA256SUMS"
        try { Invoke-WebRequest -UseBasicParsing -Uri "$base/SHA256SUMS" -OutFile $sumsFile }
        catch { Fail "could not download $base/SHA256SUMS; nothing installed" }
        $sums = Read-Sums (Get-Content -Raw $sumsFile)
        $name = Select-Artifact $sums $base
        $file = Join-Path $tmp $name
        try { Invoke-WebRequest -UseBasicParsing -Uri "$base/$name" -OutFile $file }
        catch { Fail "could not download $base/$name; nothing installed" }
        $actual = (Get-FileHash -Algorithm SHA256 $file).Hash.ToLowerInvariant()
        if ($actual -ne $sums[$name]) {
            Fail "checksum mismatch for $name (expected $($sums[$name]), got $actual); nothing installed"
        }
        New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
        $target = Join-Path $InstallDir "codetether.exe"
        Move-Item -Force $file $target
        Write-Host "installed $name as $target"
        Set-UserPath $InstallDir $true
        Write-Host "added $InstallDir to your user PATH (open a new terminal to use it)"
        try { & $target --version } catch { Write-Host "warning: $target --version failed: $_" }
        if ($NoFunctionGemma) { Write-Host "FunctionGemma router model: skipped (-NoFunctionGemma)" }
        else { Write-Host "FunctionGemma router model: not part of this release yet; nothing downloaded" }
    }
    finally {
        Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $tmp
    }
}

function Uninstall-CodeTether {
    $target = Join-Path $InstallDir "codetether.exe"
    if (Test-Path $target) {
        Remove-Item -Force $target
        Write-Host "removed $target"
    }
    else {
        Write-Host "codetether is not installed at $target"
    }
    Set-UserPath $InstallDir $false
    Write-Host "kept your configuration and sessions"
}

try {
    if ($Uninstall) { Uninstall-CodeTether } else { Install-CodeTether }
}
catch {
    Write-Host "error: $($_.Exception.Message)" -ForegroundColor Red
    if ($PSCommandPath) { exit 1 }  # run as a file: a failing exit status for scripts and CI
}
