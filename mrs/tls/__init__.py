"""
The server's TLS key and certificate: parsing what operators paste,
validation, generation, the live L{TLSMaterial} service and client-side
verification.
"""

from mrs.tls.generate import KEY_TYPES, GenerateError, SubjectFields
from mrs.tls.material import GenerateResult, InstallRejected, NotReady, TLSMaterial
from mrs.tls.options import ServedPair, ServerConnectionCreator, minVersionWarning
from mrs.tls.pem import MAX_INPUT_BYTES, PemError, derKind, derToPem
from mrs.tls.validate import CertificateInfo, Problem, Report, checkPair

__all__ = [
    "KEY_TYPES",
    "MAX_INPUT_BYTES",
    "CertificateInfo",
    "GenerateError",
    "GenerateResult",
    "InstallRejected",
    "NotReady",
    "PemError",
    "Problem",
    "Report",
    "ServedPair",
    "ServerConnectionCreator",
    "SubjectFields",
    "TLSMaterial",
    "checkPair",
    "derKind",
    "derToPem",
    "minVersionWarning",
]
