"""The legacy CSV connector: rows become contracts, bad rows are reported, never skipped."""

from interchange.connectors import FileRow, RejectedRow, read_csv_commands
from interchange.contracts import Command


class Restock(Command, name="unit.connectors.restock", version=1):
    sku: str
    quantity: int


def test_rows_become_contracts_and_bad_rows_come_back_with_line_and_reason(tmp_path):
    path = tmp_path / "restock.csv"
    path.write_text("sku,quantity\nA,1\nB,many\nC,3\n")
    items = list(read_csv_commands(path, Restock.model_validate))
    assert [type(i) for i in items] == [FileRow, RejectedRow, FileRow]
    assert items[0] == FileRow(2, Restock(sku="A", quantity=1))
    assert items[1].line == 3
    assert items[1].raw == {"sku": "B", "quantity": "many"}
    assert items[1].reason.startswith("quantity: Input should be a valid integer")
    assert items[2].contract == Restock(sku="C", quantity=3)
