"""Personal data is masked before a customer's text leaves the system; what
identifies nobody (a menu answer, a plan, a date, an hour) stays."""

from __future__ import annotations

import pytest

from chatbot.masking import is_valid_cnpj, is_valid_cpf, mask_personal_data

MASKED = [
    # CPF, with or without punctuation
    ("meu cpf é 529.982.247-25", "meu cpf é [CPF]"),
    ("cpf 52998224725", "cpf [CPF]"),
    ("CPF: 529.982.24725", "CPF: [CPF]"),
    ("cpf 529982247-25", "cpf [CPF]"),
    ("cpf 529 982 247 25", "cpf [CPF]"),
    ("meucpf52998224725", "meucpf[CPF]"),
    ("cpf 123.456.789-00 (digitei errado)", "cpf [CPF] (digitei errado)"),
    # CNPJ, numeric and the alphanumeric format (from July 2026)
    ("cnpj 11.222.333/0001-81", "cnpj [CNPJ]"),
    ("cnpj 11222333000181", "cnpj [CNPJ]"),
    ("cnpj 11222333/0001-81", "cnpj [CNPJ]"),
    ("cnpj 11.222.333/0001-00", "cnpj [CNPJ]"),
    ("empresa 12.ABC.345/01DE-35", "empresa [CNPJ]"),
    ("empresa 12ABC34501DE35", "empresa [CNPJ]"),
    ("empresa 12abc34501de35", "empresa [CNPJ]"),
    # Phones, Brazilian formats
    ("+55 (11) 98888-7777", "[TELEFONE]"),
    ("+55 11 98888-7777", "[TELEFONE]"),
    ("55 11 98888-7777", "[TELEFONE]"),
    ("(11) 98888-7777", "[TELEFONE]"),
    ("(11)98888-7777", "[TELEFONE]"),
    ("(11) 988887777", "[TELEFONE]"),
    ("11 98888-7777", "[TELEFONE]"),
    ("11 9 8888-7777", "[TELEFONE]"),
    ("11 9 8888 7777", "[TELEFONE]"),
    ("11988887777", "[TELEFONE]"),
    ("5511988887777", "[TELEFONE]"),
    ("+5511988887777", "[TELEFONE]"),
    ("98888-7777", "[TELEFONE]"),
    ("98888.7777", "[TELEFONE]"),
    ("988887777", "[TELEFONE]"),
    ("fixo (11) 4000-1234", "fixo [TELEFONE]"),
    ("fixo 1140001234", "fixo [TELEFONE]"),
    ("4000-1234", "[TELEFONE]"),
    ("me liga no 11 98888-7777 ou 11 97777-6666", "me liga no [TELEFONE] ou [TELEFONE]"),
    # E-mail
    ("maria.souza@example.com", "[EMAIL]"),
    ("meu email é joao+isp@provedor.com.br.", "meu email é [EMAIL]."),
    ("joao123456@uol.com.br", "[EMAIL]"),
    # Boletos and other long numbers
    (
        "linha 23790.12345 60000.123456 70000.123456 1 23450000010000",
        "linha [BOLETO]",
    ),
    ("paguei 34191790010104351004791020150008291070026000 ontem", "paguei [BOLETO] ontem"),
    ("conta 836200000005 667800481000 180975657313 001589636081", "conta [BOLETO]"),
    ("barras 34191100000000000001790010104351004791020150", "barras [BOLETO]"),
    ("protocolo 2025123456", "protocolo [NÚMERO]"),
    ("contrato 123456", "contrato [NÚMERO]"),
    ("RG 12.345.678-9", "RG [NÚMERO]"),
    ("CEP 01310-100", "CEP [NÚMERO]"),
    ("pedido #4815162342", "pedido #[NÚMERO]"),
    # Several at once
    (
        "Sou Maria, CPF 529.982.247-25, zap (11) 98888-7777, maria@example.com",
        "Sou Maria, CPF [CPF], zap [TELEFONE], [EMAIL]",
    ),
]

KEPT = [
    "2",
    "oi",
    "300 mega",
    "quero a 2 via",
    "2ª via do boleto",
    "o boleto de 10/12",
    "vence dia 10/12/2025",
    "vence 10.12.2025",
    "vence 2025-12-10",
    "técnico vem às 8h",
    "das 08:30 às 18:00",
    "de 8 às 18, 2 300 mega",
    "paguei R$ 99,90",
    "paguei R$ 1.299,90",
    "opção 1 2 3",
    "liguei no 0800 123 4567",
    "plano 12345",
    "responsabilidade",
    "internacional12",
    "lavanderia/sala12",
    "",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_personal_data_is_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_what_identifies_nobody_is_kept(text: str) -> None:
    assert mask_personal_data(text) == text


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_masking_twice_changes_nothing_more(text: str, expected: str) -> None:
    assert mask_personal_data(mask_personal_data(text)) == expected


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("52998224725", True),
        ("12345678909", True),
        ("52998224724", False),
        ("11111111111", False),
        ("11988887777", False),
        ("5299822472", False),
    ],
)
def test_cpf_check_digits(digits: str, valid: bool) -> None:
    assert is_valid_cpf(digits) is valid


@pytest.mark.parametrize(
    ("chars", "valid"),
    [
        ("11222333000181", True),
        ("11222333000182", False),
        ("12ABC34501DE35", True),  # Receita Federal's example of the new format
        ("12abc34501de35", True),
        ("12ABC34501DE36", False),
        ("00000000000000", False),
        ("12ABC34501DEXX", False),
        ("1222333000181", False),
    ],
)
def test_cnpj_check_digits(chars: str, valid: bool) -> None:
    assert is_valid_cnpj(chars) is valid
